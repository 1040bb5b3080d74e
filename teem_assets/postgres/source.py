"""What the PostgreSQL exports read: rows of the migrated tables, streamed as Arrow record batches."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from teem_assets.catalogue import Table
from teem_assets.migration import CREATED_DATE

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


def batch_keys(table: Table, batch_folders: list[str]) -> tuple[pa.Array, list[str]]:
    """The distinct primary keys of the batches at `batch_folders`, and the created dates they fall on."""
    key = table.primary_key[0]
    parts = [pq.read_table(folder, columns=[key, table.created_at]) for folder in batch_folders]
    rows = pa.concat_tables(parts)
    dates = pc.unique(pc.cast(rows.column(table.created_at), pa.date32()).drop_null())
    return pc.unique(rows.column(key)), sorted(str(d) for d in dates.to_pylist())


def migrated_rows(
    table: Table, table_root: str, keys: pa.Array | None = None, created_dates: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The current rows of a migrated table (all, or those with a key in `keys`), in catalogue columns."""
    if not os.path.isdir(table_root):
        return
    partitioning = ds.partitioning(pa.schema([(CREATED_DATE, pa.string())]), flavor="hive")
    dataset = ds.dataset(table_root, format="parquet", partitioning=partitioning)
    condition = None
    if created_dates is not None:
        condition = ds.field(CREATED_DATE).isin(created_dates)
    if keys is not None:
        key_condition = ds.field(table.primary_key[0]).isin(keys)
        condition = key_condition if condition is None else condition & key_condition
    yield from stream(dataset, table.column_names, condition)
