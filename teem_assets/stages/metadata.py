"""Materialization metadata every layer shares, in Pipes' external form: schema, a preview."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from teem_assets.catalogue import PERSONAL_MASK, Table
from teem_assets.stages.report import markdown, value
from teem_assets.unload.location import resolve

PREVIEW_ROWS = 5


def column_schema(table: Table) -> dict[str, Any]:
    columns = [
        {"name": c.name, "type": c.type.sql, "description": "primary key" if c.name in table.primary_key else None}
        for c in table.columns
    ]
    return value({"columns": columns}, "table_schema")


MASK = PERSONAL_MASK


def masked(rows: pa.Table, personal: Collection[str]) -> pa.Table:
    """`rows` with each value of the `personal` columns (the catalogue's personal data) replaced by MASK."""
    for name in personal:
        if name in rows.column_names:
            column = rows.column(name)
            hidden = pa.array([None if v is None else MASK for v in column.to_pylist()], pa.string())
            rows = rows.set_column(rows.column_names.index(name), name, hidden)
    return rows


def preview_rows(rows: pa.Table, personal: Collection[str] = ()) -> dict[str, Any]:
    if not rows.num_rows:
        return markdown("(no rows)")
    return markdown(masked(rows.slice(0, PREVIEW_ROWS), personal).to_pandas().to_markdown(index=False))


def _first_rows(files: Iterable[tuple[str, Callable[[str], Any]]], personal: Collection[str]) -> dict[str, Any]:
    """The first rows of the first non-empty Parquet file, each (uri, how to open it), as a markdown table, the
    `personal` columns masked: one row group read, never a whole file."""
    for uri, open_file in files:
        with open_file(uri) as source:
            batch = next(pq.ParquetFile(source).iter_batches(batch_size=PREVIEW_ROWS), None)
        if batch is not None and batch.num_rows:
            return preview_rows(pa.Table.from_batches([batch]), personal)
    return markdown("(no rows)")


def _open_resolved(uri: str) -> Any:
    filesystem, location = resolve(uri)
    return filesystem.open_input_file(location)


def preview(files: list[str], personal: Collection[str]) -> dict[str, Any]:
    """The first rows of the first non-empty Parquet file of `files` (paths or URIs), `personal` masked."""
    return _first_rows(((uri, _open_resolved) for uri in files), personal)


def table_preview(iceberg_table, personal: Collection[str]) -> dict[str, Any]:  # noqa: ANN001 - a pyiceberg Table
    """The first rows of the Iceberg table's current data files, read through the table's own FileIO, `personal`
    masked."""
    files = (task.file.file_path for task in iceberg_table.scan().plan_files())
    return _first_rows(((uri, lambda uri: iceberg_table.io.new_input(uri).open()) for uri in files), personal)
