"""The batch-date partitions shared by every daily asset (DESIGN §3)."""

from __future__ import annotations

import dagster as dg

from teem_assets.settings import first_batch_date

FIRST_BATCH_DATE = first_batch_date()

# Partition D is the incremental unload of day D: the rows created or updated that day.
batch_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_BATCH_DATE)
