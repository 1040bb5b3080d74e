"""The checks of one fact batch against the batches before it: volume (blocking) and companies (warning)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from teem_assets.verdicts.history import batch_companies, batch_rows, previous_batches

VOLUME = "volume_vs_trailing_median"
COMPANIES = "companies_still_present"


@dataclass(frozen=True)
class VolumeVerdict:
    batch: str
    rows: int
    trailing_median: float | None  # None: no earlier batch to compare with
    threshold: float

    @property
    def passed(self) -> bool:
        return self.trailing_median is None or self.rows >= self.threshold * self.trailing_median

    def describe(self) -> str:
        if self.trailing_median is None:
            return f"{self.batch}: {self.rows} rows, the first batch: nothing to compare with"
        share = self.rows / self.trailing_median if self.trailing_median else float("inf")
        return f"{self.batch}: {self.rows} rows, {share:.1%} of the trailing median {self.trailing_median:g}"


def volume_verdict(table_folder: str, batch: str, window: int, threshold: float) -> VolumeVerdict:
    """`table_folder` is the table's Parquet layer (parquet/<table>)."""
    earlier = [b.rows for b in previous_batches(table_folder, batch, window)]
    median = statistics.median(earlier) if earlier else None
    return VolumeVerdict(batch, batch_rows(table_folder, batch), median, threshold)


def missing_companies(table_folder: str, batch: str, window: int) -> list[int]:
    """Companies in any of the `window` batches before `batch` but not in it (the table's company column)."""
    earlier: set[int] = set()
    for previous in previous_batches(table_folder, batch, window):
        earlier |= set(previous.companies)
    return sorted(earlier - batch_companies(table_folder, batch))
