"""What earlier batches held, from the statistics each conversion recorded in its batch pointer
(`teem_assets.converted`): no old batch is read again, and the checks see the same thing however and in
whatever order the batches were run."""

from __future__ import annotations

import datetime as dt

from teem_assets import converted
from teem_assets.unload.location import join

# How far back the trailing batches are looked for: `count` batches within this many days of calendar time.
LOOKBACK_DAYS = 31


def _batch(table_folder: str, batch: str) -> converted.ConvertedBatch | None:
    return converted.read(join(table_folder, f"batch_date={batch}"))


def previous_batches(table_folder: str, batch: str, count: int) -> list[converted.ConvertedBatch]:
    """The `count` converted batches before `batch` (days without one skipped, at most LOOKBACK_DAYS or
    `count` days back, whichever is further), oldest first. Reads their pointers only, never lists the
    table's folder: the cost is the same after any length of history."""
    found: list[converted.ConvertedBatch] = []
    day = dt.date.fromisoformat(batch)
    for back in range(1, max(LOOKBACK_DAYS, count) + 1):
        if len(found) == count:
            break
        earlier = _batch(table_folder, (day - dt.timedelta(days=back)).isoformat())
        if earlier is not None:
            found.append(earlier)
    return found[::-1]


def same_weekday_batches(table_folder: str, batch: str, weeks: int) -> list[converted.ConvertedBatch]:
    """The converted batches of the same weekday in the `weeks` weeks before `batch`, newest first."""
    day = dt.date.fromisoformat(batch)
    found = [_batch(table_folder, (day - dt.timedelta(weeks=back)).isoformat()) for back in range(1, weeks + 1)]
    return [b for b in found if b is not None]


def batch_rows(table_folder: str, batch: str) -> int:
    found = _batch(table_folder, batch)
    return found.rows if found else 0


def batch_companies(table_folder: str, batch: str) -> set[int]:
    found = _batch(table_folder, batch)
    return set(found.companies) if found else set()
