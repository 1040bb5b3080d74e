"""What earlier batches held, read from the Parquet layer (footers and one column), not from run history,
so the checks see the same thing however and in whatever order the batches were run."""

from __future__ import annotations

import os

import pyarrow.compute as pc
import pyarrow.dataset as ds

from teem_assets import layout
from teem_assets.migration import parquet_rows


def previous_batches(root: str, table: str, batch: str, count: int) -> list[str]:
    """The `count` converted batches before `batch`, oldest first."""
    return [b for b in layout.converted_batches(root, table) if b < batch][-count:]


def batch_rows(root: str, table: str, batch: str) -> int:
    return parquet_rows(layout.parquet_batch(root, table, batch))


def batch_values(root: str, table: str, batch: str, column: str) -> set[object]:
    """The distinct non-null values of a column in one converted batch."""
    folder = layout.parquet_batch(root, table, batch)
    if not os.path.isdir(folder):
        return set()
    values = ds.dataset(folder, format="parquet").to_table(columns=[column]).column(column)
    return set(pc.unique(values.drop_null()).to_pylist())
