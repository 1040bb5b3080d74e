"""The checks of one fact batch against the batches before it: volume (blocking) and companies (warning)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from teem_assets.catalogue import Table
from teem_assets.checks.history import batch_rows, batch_values, previous_batches


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


def volume_verdict(root: str, table: str, batch: str, window: int, threshold: float) -> VolumeVerdict:
    earlier = [batch_rows(root, table, b) for b in previous_batches(root, table, batch, window)]
    median = statistics.median(earlier) if earlier else None
    return VolumeVerdict(batch, batch_rows(root, table, batch), median, threshold)


def missing_companies(root: str, table: Table, batch: str, window: int) -> list[object]:
    """Companies in any of the `window` batches before `batch` but not in it (the table's company column)."""
    column = table.company_column
    earlier: set[object] = set()
    for previous in previous_batches(root, table.name, batch, window):
        earlier |= batch_values(root, table.name, previous, column)
    return sorted(earlier - batch_values(root, table.name, batch, column))
