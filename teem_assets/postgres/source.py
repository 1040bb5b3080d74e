"""What the PostgreSQL exports read: rows of the migrated tables, streamed as Arrow record batches."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from teem_assets.catalogue import Table
from teem_assets.iceberg_scan import scan_batches
from teem_assets.migration import CREATED_DATE
from teem_assets.postgres.keys import KeySet
from teem_assets.redshift_types import arrow_schema
from teem_assets.unload.location import parquet_dataset

BATCH_ROWS = 16_384


def stream(dataset: ds.Dataset, columns: list[str], condition: ds.Expression | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches read one file and a couple of batches ahead, so memory stays flat on any table size
    (Arrow's default read-ahead held 2.8 GB for a 5-million-row file)."""
    yield from dataset.to_batches(
        columns=columns,
        filter=condition,
        batch_size=BATCH_ROWS,
        batch_readahead=2,
        fragment_readahead=1,
        fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
    )


def batch_keys(table: Table, files: list[str]) -> tuple[KeySet, list[str]]:
    """The distinct primary keys of the batches' Parquet files, and the created dates they fall on."""
    key = table.primary_key[0]
    if not files:
        return KeySet.of([]), []
    rows = parquet_dataset(files).to_table(columns=[key, table.created_at])
    dates = pc.unique(pc.cast(rows.column(table.created_at), pa.date32()).drop_null())
    return KeySet.of(rows.column(key)), sorted(str(d) for d in dates.to_pylist())


def migrated_rows(
    iceberg_table,  # noqa: ANN001 - pyiceberg's Table
    table: Table,
    keys: KeySet | None = None,
    created_dates: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The current rows of a migrated table (all, or those with a key in `keys` on `created_dates`), in the
    catalogue's columns and Arrow types, streamed from its current snapshot."""
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, In, LessThanOrEqual

    if (created_dates is not None and not created_dates) or (keys is not None and not len(keys)):
        return
    condition = In(CREATED_DATE, set(created_dates)) if created_dates is not None else AlwaysTrue()
    key = table.primary_key[0]
    if keys is not None:  # files outside the keys' range are skipped by their column bounds
        condition = And(condition, GreaterThanOrEqual(key, keys.low), LessThanOrEqual(key, keys.high))
    scan = iceberg_table.scan(row_filter=condition, selected_fields=tuple(table.column_names))
    schema = arrow_schema(table.typed_columns)
    for batch in scan_batches(scan):
        if keys is not None:
            batch = batch.filter(keys.contains(batch.column(key)))
        for piece in pa.Table.from_batches([batch]).to_batches(BATCH_ROWS):
            yield piece.select(schema.names).cast(schema)
