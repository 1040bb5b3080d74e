"""The checks of one fact batch against the batches before it: volume (blocking) and companies (warning)."""

from __future__ import annotations

from dataclasses import dataclass

from teem_assets import converted
from teem_assets.verdicts.history import BatchHistory

VOLUME = "volume_vs_trailing_median"
COMPANIES = "companies_still_present"


def _date(batch: converted.ConvertedBatch) -> str:
    return batch.folder.rstrip("/").rsplit("=", 1)[-1]


@dataclass(frozen=True)
class VolumeVerdict:
    batch: str
    rows: int
    baseline: int | None  # the lowest row count of the batches compared with; None: nothing to compare with
    compared_with: tuple[str, ...]  # those batches' dates
    threshold: float

    @property
    def passed(self) -> bool:
        return self.baseline is None or self.rows >= self.threshold * self.baseline

    def describe(self) -> str:
        if self.baseline is None:
            return (
                f"{self.batch}: {self.rows} rows, no batch of its weekday in the weeks before: nothing to compare with"
            )
        share = self.rows / self.baseline if self.baseline else float("inf")
        return (
            f"{self.batch}: {self.rows} rows, {share:.1%} of {self.baseline}, the fewest of "
            f"{', '.join(self.compared_with)}"
        )


def volume_verdict(history: BatchHistory, batch: str, weeks: int, threshold: float) -> VolumeVerdict:
    """A batch against the same weekday of the `weeks` weeks before it (meeting data's weekly rhythm: a Sunday
    is compared with Sundays; the first week passes with a note). The baseline is the fewest rows among them, so
    that ordinary variation between weeks passes and a half-written unload does not."""
    earlier = history.same_weekday(batch, weeks)
    baseline = min(b.rows for b in earlier) if earlier else None
    compared = tuple(sorted(_date(b) for b in earlier))
    return VolumeVerdict(batch, history.rows(batch), baseline, compared, threshold)


def short_batches(table_folders: list[str], batches: list[str], weeks: int, threshold: float) -> list[str]:
    """The batch dates that fail the volume check in any of the tables (their Parquet layers): the dates a run
    holds back."""
    histories = [BatchHistory(folder) for folder in table_folders]
    return [b for b in batches if any(not volume_verdict(h, b, weeks, threshold).passed for h in histories)]


def missing_companies(history: BatchHistory, batch: str, window: int) -> list[int]:
    """Companies in any of the `window` batches before `batch` but not in it (the table's company column)."""
    earlier: set[int] = set()
    for previous in history.previous(batch, window):
        earlier |= set(previous.companies)
    return sorted(earlier - history.companies(batch))
