"""Incremental and snapshot migration: last writer wins, in any order, idempotent, one row per key."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_SPEC
from oracle import newest_by_key

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.migration import CREATED_DATE, migrate_batches, replace_snapshot
from teem_assets.sample.generate import snapshot_rows
from teem_assets.unload.spark_reader import UnloadConversion, convert_unloads

FACTS = ["fact_event_by_day", "fact_attendance"]
DAYS = [d.isoformat() for d in SAMPLE_SPEC.batch_dates]


@pytest.fixture(scope="module")
def parquet_root(spark, sample_root: Path, tmp_path_factory) -> str:
    """Every unload of the sample converted to Parquet, in one Spark job."""
    root = str(tmp_path_factory.mktemp("layers"))
    conversions = []
    for name, table in TABLES.items():
        columns = table.typed_columns
        batches = ["snapshot"] if table.is_dimension else DAYS
        for batch in batches:
            if table.is_dimension:
                raw, out = layout.raw_snapshot(str(sample_root), name), layout.parquet_snapshot(root, name)
            else:
                raw, out = layout.raw_batch(str(sample_root), name, batch), layout.parquet_batch(root, name, batch)
            conversions.append(UnloadConversion(raw, columns, out, layout.quarantine(root, name, batch)))
    converted = convert_unloads(spark, conversions)
    assert all(c.malformed == 0 for c in converted)
    return root


def read_table(spark, table: str, root: str) -> list[tuple]:
    rows = spark.read.parquet(root).collect()
    spec = TABLES[table]
    created = spec.column_names.index(spec.created_at)
    result = []
    for row in rows:
        values = tuple(row[c] for c in spec.column_names)
        assert row[CREATED_DATE] == values[created].date()  # each row sits in its created_date folder
        result.append(values)
    return sorted(result, key=repr)


def apply(spark, parquet_root: str, table: str, days: list[list[str]], target: str) -> None:
    for group in days:
        batches = [layout.parquet_batch(parquet_root, table, d) for d in group]
        migrate_batches(spark, TABLES[table], batches, target, os.path.join(target + "-quarantine"))


@pytest.mark.parametrize("table", FACTS)
def test_batches_in_any_order_or_as_a_range_give_the_newest_row_per_key(spark, parquet_root, tmp_path, table):
    in_order, reverse, as_range = (str(tmp_path / name) for name in ("in_order", "reverse", "range"))
    apply(spark, parquet_root, table, [[d] for d in DAYS], in_order)
    apply(spark, parquet_root, table, [[d] for d in reversed(DAYS)], reverse)
    apply(spark, parquet_root, table, [DAYS], as_range)

    expected = sorted(newest_by_key(table).values(), key=repr)
    got = read_table(spark, table, in_order)
    assert got == expected
    assert read_table(spark, table, reverse) == got
    assert read_table(spark, table, as_range) == got


def test_a_later_batch_updates_rows_of_earlier_days(spark, parquet_root, tmp_path):
    table = TABLES["fact_event_by_day"]
    target = str(tmp_path / "t")
    first = migrate_batches(
        spark, table, [layout.parquet_batch(parquet_root, table.name, DAYS[0])], target, target + "q"
    )
    later = migrate_batches(
        spark, table, [layout.parquet_batch(parquet_root, table.name, DAYS[5])], target, target + "q"
    )
    assert first.keys_updated == 0 and later.keys_updated > 0
    assert DAYS[0] in later.partitions  # an update of a row created on the first day rewrote that partition


def _partition_contents(root: str) -> dict[str, list]:
    contents = {}
    for name in sorted(os.listdir(root)):
        if not name.startswith(CREATED_DATE):
            continue
        files = sorted(f for f in os.listdir(os.path.join(root, name)) if f.endswith(".parquet"))
        contents[name] = [pq.read_table(os.path.join(root, name, f)).to_pylist() for f in files]
    return contents


def test_materializing_the_same_batch_twice_changes_nothing(spark, parquet_root, tmp_path):
    table = TABLES["fact_attendance"]
    target = str(tmp_path / "t")
    batches = [layout.parquet_batch(parquet_root, table.name, d) for d in DAYS[:3]]
    migrate_batches(spark, table, batches, target, target + "q")
    once = _partition_contents(target)
    again = migrate_batches(spark, table, batches[-1:], target, target + "q")
    assert again.keys_updated == again.rows_in  # every key was there already
    assert _partition_contents(target) == once
    assert not [n for n in os.listdir(target) if n.startswith(".")]  # no staging left behind


def test_snapshot_replaces_the_whole_dimension(spark, parquet_root, tmp_path):
    table = TABLES["dim_space"]
    target = str(tmp_path / "dim_space")
    os.makedirs(os.path.join(target, f"{CREATED_DATE}=2001-01-01"))  # a partition of an older snapshot
    report = replace_snapshot(spark, table, layout.parquet_snapshot(parquet_root, table.name), target, target + "q")
    assert f"{CREATED_DATE}=2001-01-01" not in os.listdir(target)
    expected = sorted(snapshot_rows(SAMPLE_SPEC, table.name), key=repr)
    assert read_table(spark, table.name, target) == expected
    assert report.table_rows == len(expected) and report.rows_rejected == 0


def test_rows_without_key_or_timestamps_are_quarantined_not_dropped(spark, tmp_path):
    table = TABLES["fact_attendance"]
    good = (1, 2, 3, "organizer", "accepted", "h", "h", "p", "f", "j", dt.datetime(2019, 9, 1), dt.datetime(2019, 9, 1))
    no_key = (
        1,
        2,
        None,
        "organizer",
        "accepted",
        "h",
        "h",
        "p",
        "f",
        "j",
        dt.datetime(2019, 9, 1),
        dt.datetime(2019, 9, 1),
    )
    from teem_assets.migration import table_schema

    batch = str(tmp_path / "batch")
    spark.createDataFrame([good, no_key], table_schema(table)).write.parquet(batch)
    report = migrate_batches(spark, table, [batch], str(tmp_path / "t"), str(tmp_path / "q"))
    assert (report.rows_in, report.rows_rejected, report.table_rows) == (2, 1, 1)
    assert spark.read.parquet(str(tmp_path / "q")).count() == 1
