"""The batch-date partitions shared by every daily asset (DESIGN §3)."""

from __future__ import annotations

import os

import dagster as dg

FIRST_BATCH_DATE = os.environ.get("TEEM_FIRST_BATCH_DATE", "2019-09-01")

# Partition D is the incremental unload of day D: the rows created or updated that day.
batch_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_BATCH_DATE)
