"""The exports' Iceberg reads (teem_assets.iceberg_scan) hold a few files in memory, whatever the table's size."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import GreaterThanOrEqual
from pyiceberg.table import Table

from teem_assets.iceberg_scan import FILES_AHEAD, scan_batches

FILES = 8
ROWS_PER_FILE = 50_000


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Table:
    """A table of FILES data files, one per append, each of ROWS_PER_FILE rows of 200-character text."""
    folder: Path = tmp_path_factory.mktemp("iceberg_scan")
    catalog = SqlCatalog("scan", uri=f"sqlite:///{folder}/catalog.db", warehouse=f"file://{folder}")
    catalog.create_namespace("db")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string())])
    created = catalog.create_table("db.rows", schema=schema)
    for file in range(FILES):
        ids = range(file * ROWS_PER_FILE, (file + 1) * ROWS_PER_FILE)
        created.append(pa.table({"id": list(ids), "text": [f"{i:0200d}" for i in ids]}, schema=schema))
    return created


def _ids(batches: list[pa.RecordBatch]) -> list[int]:
    return sorted(i for batch in batches for i in batch.column("id").to_pylist())


def test_the_scan_gives_every_row_its_filter_keeps_once(table: Table) -> None:
    assert _ids(list(scan_batches(table.scan()))) == list(range(FILES * ROWS_PER_FILE))
    half = FILES * ROWS_PER_FILE // 2 + 7  # inside a file: the filter's residual applies to its rows
    kept = list(scan_batches(table.scan(row_filter=GreaterThanOrEqual("id", half))))
    assert _ids(kept) == list(range(half, FILES * ROWS_PER_FILE))
    assert kept[0].schema.names == ["id", "text"]


def test_a_slow_consumer_holds_at_most_the_files_read_ahead(table: Table) -> None:
    file_bytes = table.scan().to_arrow().nbytes // FILES
    before = pa.total_allocated_bytes()
    held = 0
    for _ in scan_batches(table.scan()):  # the exports' read-ahead
        time.sleep(0.3)  # a COPY slower than the reads: they run ahead as far as they are let
        held = max(held, pa.total_allocated_bytes() - before)
    # the file given to the consumer, those read ahead, and a part of one being decoded
    bound = (FILES_AHEAD + 2) * file_bytes
    assert FILES > FILES_AHEAD + 2, "more files than the bound, or it would hold whatever the reader does"
    assert 0 < held <= bound, f"{held / 2**20:.0f} MB held, files of {file_bytes / 2**20:.0f} MB"
