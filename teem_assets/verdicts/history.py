"""What earlier batches held, from the statistics each conversion recorded in its batch pointer
(`teem_assets.converted`): no old batch is read again, and the checks see the same thing however and in
whatever order the batches were run."""

from __future__ import annotations

import datetime as dt

from teem_assets import converted
from teem_assets.unload.location import join

# How far back the trailing batches are looked for: `count` batches within this many days of calendar time.
LOOKBACK_DAYS = 31


class BatchHistory:
    """The batch pointers of one table's Parquet layer (parquet/<table>), each read at most once: the checks of
    a range of dates look at the same earlier dates again and again (14 dates of a range read some 500 pointers
    one by one, each a request or two on S3, where 45 different ones would do). Made for one evaluation: a
    pointer published after it was read is not seen."""

    def __init__(self, table_folder: str) -> None:
        self.table_folder = table_folder
        self._read: dict[str, converted.ConvertedBatch | None] = {}

    def batch(self, date: str) -> converted.ConvertedBatch | None:
        if date not in self._read:
            self._read[date] = converted.read(join(self.table_folder, f"batch_date={date}"))
        return self._read[date]

    def previous(self, batch: str, count: int) -> list[converted.ConvertedBatch]:
        """The `count` converted batches before `batch` (days without one skipped, at most LOOKBACK_DAYS or
        `count` days back, whichever is further), oldest first. Reads their pointers only, never lists the
        table's folder: the cost is the same after any length of history."""
        found: list[converted.ConvertedBatch] = []
        day = dt.date.fromisoformat(batch)
        for back in range(1, max(LOOKBACK_DAYS, count) + 1):
            if len(found) == count:
                break
            earlier = self.batch((day - dt.timedelta(days=back)).isoformat())
            if earlier is not None:
                found.append(earlier)
        return found[::-1]

    def same_weekday(self, batch: str, weeks: int) -> list[converted.ConvertedBatch]:
        """The converted batches of the same weekday in the `weeks` weeks before `batch`, newest first."""
        day = dt.date.fromisoformat(batch)
        found = [self.batch((day - dt.timedelta(weeks=back)).isoformat()) for back in range(1, weeks + 1)]
        return [b for b in found if b is not None]

    def rows(self, batch: str) -> int:
        found = self.batch(batch)
        return found.rows if found else 0

    def companies(self, batch: str) -> set[int]:
        found = self.batch(batch)
        return set(found.companies) if found else set()
