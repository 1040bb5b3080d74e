"""Materialization metadata every layer shares: schema, row counts, a preview."""

from __future__ import annotations

import glob
import os
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from teem_assets.catalogue import Table

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


def preview(folder: str) -> dg.MetadataValue:
    """The first rows of the first non-empty Parquet file under `folder`, as a markdown table."""
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True)):
        if "/." in path:
            continue
        head = pq.ParquetFile(path).iter_batches(batch_size=PREVIEW_ROWS)
        batch = next(head, None)
        if batch is not None and batch.num_rows:
            return dg.MetadataValue.md(batch.to_pandas().to_markdown(index=False))
    return dg.MetadataValue.md("(no rows)")


def table_metadata(table: Table, **values: Any) -> dict[str, Any]:
    return {"dagster/column_schema": column_schema(table), **values}
