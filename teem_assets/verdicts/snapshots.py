"""The check of a dimension snapshot against the table it would replace: never replace with less by accident."""

from __future__ import annotations

from dataclasses import dataclass

SHRINK = "snapshot_not_shrunk"


@dataclass(frozen=True)
class ShrinkVerdict:
    snapshot_rows: int
    current_rows: int | None  # None: the table does not exist yet
    threshold: float

    @property
    def passed(self) -> bool:
        if self.snapshot_rows == 0:
            return False
        return not self.current_rows or self.snapshot_rows >= self.threshold * self.current_rows

    def describe(self) -> str:
        if self.snapshot_rows == 0:
            return "the snapshot is empty: the current table is kept"
        if not self.current_rows:
            return f"{self.snapshot_rows} rows; no current table to compare with"
        share = self.snapshot_rows / self.current_rows
        return f"{self.snapshot_rows} rows, {share:.1%} of the current table's {self.current_rows}"


def shrink_verdict(snapshot_rows: int, current_rows: int | None, threshold: float) -> ShrinkVerdict:
    return ShrinkVerdict(snapshot_rows, current_rows, threshold)
