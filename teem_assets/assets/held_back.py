"""Short batch dates and the dates around them. A run with a short date stops after Parquet (its volume check
blocks), so that no layer records a materialization of that date: the run's partitions of `migrated/*`,
`postgres/*` and the aggregates show failed. The dates of the run that passed then run again as runs of their
own (`admitted_job`, one per unbroken range), and materialize: `teem run` starts them itself, and in a
deployment `held_back_sensor` requests them. A Dagster step's output materializes every partition of its run,
so a run of its own is the only way a date can stay out while its neighbours go in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg

from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.catalogue import FACTS
from teem_assets.verdicts.batches import VOLUME, short_batches


def refusing_short_batches(
    context: dg.AssetExecutionContext, storage: StorageResource, thresholds: CheckThresholds
) -> list[str]:
    """The run's batch dates, when every fact table's volume check passes them all: the guard of the writers
    past Parquet, whoever starts them (the volume check blocks a run of every layer before this)."""
    batches = list(context.partition_keys)
    folders = [storage.data.parquet_table(table.name) for table in FACTS]
    held = short_batches(folders, batches, thresholds.trailing_weeks, thresholds.volume_threshold)
    if held:
        raise dg.Failure(
            description=f"short (volume check): {', '.join(held)}; run it again once its unload is complete, or "
            "with the volume threshold lowered if the volume is real (TEEM_VOLUME_THRESHOLD, or the run's "
            "`thresholds` resource config). A range run of every layer (`teem run`, a backfill) runs its other "
            "dates on their own (held_back_sensor); launched alone, leave the date out of the range.",
            metadata={"short_batches": ", ".join(held)},
            allow_retries=False,
        )
    return batches


def held_back(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[str]:
    """The dates a run's volume checks found short."""
    dates: set[str] = set()
    for evaluation in evaluations:
        if evaluation.check_name == VOLUME and not evaluation.passed:
            named = evaluation.metadata.get("short_batches")
            text = str(named.value) if named is not None else "none"
            dates |= {d.strip() for d in text.split(",") if d.strip() and d.strip() != "none"}
    return sorted(dates)


def admitted_ranges(first: str, last: str, held: list[str]) -> list[tuple[str, str]]:
    """The unbroken ranges of the daily dates first..last without the held ones."""
    ranges: list[tuple[str, str]] = []
    start: dt.date | None = None
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    while day <= end + dt.timedelta(days=1):
        admitted = day <= end and day.isoformat() not in held
        if admitted and start is None:
            start = day
        elif not admitted and start is not None:
            ranges.append((start.isoformat(), (day - dt.timedelta(days=1)).isoformat()))
            start = None
        day += dt.timedelta(days=1)
    return ranges
