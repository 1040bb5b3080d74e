"""Materialization metadata every layer shares, in Pipes' external form: schema, a preview."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from teem_assets.catalogue import Table
from teem_assets.stages.report import markdown, value
from teem_assets.unload.location import resolve

PREVIEW_ROWS = 5


def column_schema(table: Table) -> dict[str, Any]:
    columns = [
        {"name": c.name, "type": c.type.sql, "description": "primary key" if c.name in table.primary_key else None}
        for c in table.columns
    ]
    return value({"columns": columns}, "table_schema")


def preview_rows(rows: pa.Table) -> dict[str, Any]:
    if not rows.num_rows:
        return markdown("(no rows)")
    return markdown(rows.slice(0, PREVIEW_ROWS).to_pandas().to_markdown(index=False))


def _first_rows(files: Iterable[tuple[str, Callable[[str], Any]]]) -> dict[str, Any]:
    """The first rows of the first non-empty Parquet file, each (uri, how to open it), as a markdown table:
    one row group read, never a whole file."""
    for uri, open_file in files:
        with open_file(uri) as source:
            batch = next(pq.ParquetFile(source).iter_batches(batch_size=PREVIEW_ROWS), None)
        if batch is not None and batch.num_rows:
            return preview_rows(pa.Table.from_batches([batch]))
    return markdown("(no rows)")


def _open_resolved(uri: str) -> Any:
    filesystem, location = resolve(uri)
    return filesystem.open_input_file(location)


def preview(files: list[str]) -> dict[str, Any]:
    """The first rows of the first non-empty Parquet file of `files` (paths or URIs)."""
    return _first_rows((uri, _open_resolved) for uri in files)


def table_preview(iceberg_table) -> dict[str, Any]:  # noqa: ANN001 - a pyiceberg Table
    """The first rows of the Iceberg table's current data files, read through the table's own FileIO."""
    files = (task.file.file_path for task in iceberg_table.scan().plan_files())
    return _first_rows((uri, lambda uri: iceberg_table.io.new_input(uri).open()) for uri in files)
