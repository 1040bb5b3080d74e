"""Materialization metadata every layer shares, in Pipes' external form: schema, a preview."""

from __future__ import annotations

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


def preview(files: list[str]) -> dict[str, Any]:
    """The first rows of the first non-empty Parquet file of `files` (paths or URIs), as a markdown table."""
    for uri in files:
        filesystem, location = resolve(uri)
        with filesystem.open_input_file(location) as source:
            batch = next(pq.ParquetFile(source).iter_batches(batch_size=PREVIEW_ROWS), None)
        if batch is not None and batch.num_rows:
            return preview_rows(pa.Table.from_batches([batch]))
    return markdown("(no rows)")
