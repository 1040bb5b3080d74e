"""Materialization metadata every layer shares: schema, row counts, a preview."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from teem_assets.catalogue import Table
from teem_assets.unload.location import resolve

PREVIEW_ROWS = 5


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type.sql,
                description="primary key" if c.name in table.primary_key else None,
            )
            for c in table.columns
        ]
    )


def preview(files: list[str]) -> dg.MetadataValue:
    """The first rows of the first non-empty Parquet file of `files` (paths or URIs), as a markdown table."""
    for uri in files:
        filesystem, path = resolve(uri)
        with filesystem.open_input_file(path) as source:
            batch = next(pq.ParquetFile(source).iter_batches(batch_size=PREVIEW_ROWS), None)
        if batch is not None and batch.num_rows:
            return preview_rows(pa.Table.from_batches([batch]))
    return dg.MetadataValue.md("(no rows)")


def preview_rows(rows: pa.Table) -> dg.MetadataValue:
    if not rows.num_rows:
        return dg.MetadataValue.md("(no rows)")
    return dg.MetadataValue.md(rows.slice(0, PREVIEW_ROWS).to_pandas().to_markdown(index=False))


def table_metadata(table: Table, **values: Any) -> dict[str, Any]:
    return {"dagster/column_schema": column_schema(table), **values}
