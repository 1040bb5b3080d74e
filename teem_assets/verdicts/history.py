"""What earlier batches held, from the statistics each conversion recorded in its batch pointer
(`teem_assets.converted`): no old batch is read again, and the checks see the same thing however and in
whatever order the batches were run."""

from __future__ import annotations

from teem_assets import converted
from teem_assets.unload.location import join


def _batch(table_folder: str, batch: str) -> converted.ConvertedBatch | None:
    return converted.read(join(table_folder, f"batch_date={batch}"))


def previous_batches(table_folder: str, batch: str, count: int) -> list[converted.ConvertedBatch]:
    """The `count` converted batches before `batch`, oldest first."""
    found: list[converted.ConvertedBatch] = []
    for day in reversed([d for d in converted.converted_dates(table_folder) if d < batch]):
        if len(found) == count:
            break
        earlier = _batch(table_folder, day)
        if earlier is not None:
            found.append(earlier)
    return found[::-1]


def batch_rows(table_folder: str, batch: str) -> int:
    found = _batch(table_folder, batch)
    return found.rows if found else 0


def batch_companies(table_folder: str, batch: str) -> set[int]:
    found = _batch(table_folder, batch)
    return set(found.companies) if found else set()
