"""A run's batch dates, read from the tags Dagster gives a partitioned run (one partition, or a range)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)


def batch_dates_of(run: dg.DagsterRun) -> tuple[str, str] | None:
    """The first and last batch date of a partitioned run."""
    first = run.tags.get(ASSET_PARTITION_RANGE_START_TAG) or run.tags.get(PARTITION_NAME_TAG)
    return (first, run.tags.get(ASSET_PARTITION_RANGE_END_TAG) or first) if first else None


def every_batch_date(run: dg.DagsterRun) -> list[str]:
    """Each batch date of a partitioned run, first to last; none for an unpartitioned one."""
    dates = batch_dates_of(run)
    if dates is None:
        return []
    first, last = (dt.date.fromisoformat(d) for d in dates)
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
