"""A generated unload of all six tables, read back through Spark, equals what the generator wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_SPEC

from teem_assets.catalogue import TABLES
from teem_assets.layout import raw_batch, raw_snapshot
from teem_assets.sample.generate import batch_rows, snapshot_rows
from teem_assets.unload.spark_reader import read_unload


def _columns(table: str):
    return TABLES[table].typed_columns


def _key(row) -> tuple:
    return tuple((v is None, "" if v is None else str(v)) for v in row)


def _assert_same_table(got: list[tuple], expected: list[tuple]) -> None:
    assert len(got) == len(expected)
    for actual, wanted in zip(sorted(got, key=_key), sorted(expected, key=_key)):
        for a, w in zip(actual, wanted):
            assert a == w and type(a) is type(w), (actual, wanted)


def test_sample_has_gzip_parts_and_size_splits(sample_root: Path):
    parts = list((sample_root / "csv").rglob("*_part_*"))
    assert parts and all(p.name.endswith(".gz") for p in parts)
    assert any(p.name.endswith("_part_01.gz") for p in parts)


@pytest.mark.parametrize("table", ["dim_company", "dim_space", "dim_calendar", "dim_date"])
def test_dimension_snapshot_reads_back_exactly(spark, sample_root: Path, tmp_path: Path, table: str):
    read = read_unload(
        spark, raw_snapshot(str(sample_root), table), _columns(table), str(tmp_path / "o"), str(tmp_path / "q")
    )
    assert read.malformed == 0
    _assert_same_table([tuple(r) for r in read.dataframe.collect()], list(snapshot_rows(SAMPLE_SPEC, table)))


@pytest.mark.parametrize("table", ["fact_event_by_day", "fact_attendance"])
def test_every_fact_batch_reads_back_exactly(spark, sample_root: Path, tmp_path: Path, table: str):
    for day in SAMPLE_SPEC.batch_dates:
        out = tmp_path / day.isoformat()
        read = read_unload(
            spark, raw_batch(str(sample_root), table, day), _columns(table), str(out / "o"), str(out / "q")
        )
        assert read.malformed == 0
        expected = list(batch_rows(SAMPLE_SPEC, table, day))
        assert expected, f"the sample has no {table} rows on {day}"
        _assert_same_table([tuple(r) for r in read.dataframe.collect()], expected)
