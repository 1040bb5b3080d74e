"""The batch-date partitions shared by every daily asset (DESIGN §3)."""

from __future__ import annotations

import dagster as dg


def batch_partitions(first_batch_date: str) -> dg.DailyPartitionsDefinition:
    """Partition D is the incremental unload of day D: the rows created or updated that day, from
    `first_batch_date` (TEEM_FIRST_BATCH_DATE) on."""
    return dg.DailyPartitionsDefinition(start_date=first_batch_date)
