"""Incremental and snapshot migration into Iceberg tables: last writer wins, in any order, idempotent, one row
per key, and concurrent writers of one table converge."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_SPEC
from oracle import newest_by_key
from pyspark.sql import types as T
from tables import iceberg, sorted_rows

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.conversion import ConversionRequest, convert
from teem_assets.converted import read
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import SNAPSHOTS_ALWAYS_KEPT, CatalogSettings, create_table, expire_snapshots, use_catalog
from teem_assets.migration import CREATED_DATE, MigrationReport, migrate_batches, replace_snapshot
from teem_assets.sample.generate import batch_rows, snapshot_rows

FACTS = ["fact_event_by_day", "fact_attendance"]
DAYS = [d.isoformat() for d in SAMPLE_SPEC.batch_dates]


@pytest.fixture(scope="module")
def parquet_root(spark, sample_root: Path, tmp_path_factory) -> str:
    """Every unload of the sample converted to Parquet, in one Spark job."""
    root = str(tmp_path_factory.mktemp("layers"))
    requests = []
    for name, table in TABLES.items():
        for batch in ["snapshot"] if table.is_dimension else DAYS:
            if table.is_dimension:
                raw, out = layout.raw_snapshot(str(sample_root), name), layout.parquet_snapshot(root, name)
            else:
                raw, out = layout.raw_batch(str(sample_root), name, batch), layout.parquet_batch(root, name, batch)
            requests.append(ConversionRequest(table, batch, raw, out, layout.quarantine(root, name, batch)))
    done = convert(spark, requests)
    assert all(c.result.malformed == 0 for c in done)
    return root


def files(parquet_root: str, table: str, days: list[str]) -> list[str]:
    return [uri for day in days for uri in read(layout.parquet_batch(parquet_root, table, day)).uris]


def identifier(spark, root: str, table: str) -> str:
    return f"{use_catalog(spark, CatalogSettings(root))}.migrated.{table}"


def read_table(table: str, root: str) -> list[tuple]:
    rows = iceberg(root, "migrated", table).scan().to_arrow()
    spec = TABLES[table]
    for created, created_date in zip(rows.column(spec.created_at).to_pylist(), rows.column(CREATED_DATE).to_pylist()):
        assert created_date == created.date()  # each row sits in its created_date partition
    return sorted_rows(rows, list(spec.column_names))


def apply(spark, parquet_root: str, table: str, days: list[list[str]], target: str) -> None:
    for group in days:
        migrate_batches(
            spark, TABLES[table], files(parquet_root, table, group), identifier(spark, target, table), target + "-q"
        )


@pytest.mark.parametrize("table", FACTS)
def test_batches_in_any_order_or_as_a_range_give_the_newest_row_per_key(spark, parquet_root, tmp_path, table):
    """A week of batches (its later days update rows of its earlier ones) is enough to see order not matter;
    the 14-day sample's range against its single runs: test_concurrent_runs.py."""
    week = DAYS[:7]
    definition = TABLES[table]
    key = definition.column_names.index(definition.primary_key[0])
    versions = Counter(r[key] for d in SAMPLE_SPEC.batch_dates[:7] for r in batch_rows(SAMPLE_SPEC, table, d))
    assert sum(n > 1 for n in versions.values()) > 10  # keys updated by a later batch: the order could matter
    in_order, reverse, as_range = (str(tmp_path / name) for name in ("in_order", "reverse", "range"))
    apply(spark, parquet_root, table, [[d] for d in week], in_order)
    apply(spark, parquet_root, table, [[d] for d in reversed(week)], reverse)
    apply(spark, parquet_root, table, [week], as_range)

    expected = sorted(newest_by_key(table, days=SAMPLE_SPEC.batch_dates[:7]).values(), key=repr)
    got = read_table(table, in_order)
    assert got == expected
    assert read_table(table, reverse) == got
    assert read_table(table, as_range) == got


def test_a_later_batch_updates_rows_of_earlier_days(spark, parquet_root, tmp_path):
    table = TABLES["fact_event_by_day"]
    target = str(tmp_path / "t")
    name = identifier(spark, target, table.name)
    first = migrate_batches(spark, table, files(parquet_root, table.name, DAYS[:1]), name, target + "q")
    later = migrate_batches(spark, table, files(parquet_root, table.name, DAYS[5:6]), name, target + "q")
    assert first.keys_updated == 0 and later.keys_updated > 0
    assert DAYS[0] in later.partitions  # an update of a row created on the first day reached that partition


def test_materializing_the_same_batch_twice_changes_nothing(spark, parquet_root, tmp_path):
    table = TABLES["fact_attendance"]
    target = str(tmp_path / "t")
    name = identifier(spark, target, table.name)
    migrate_batches(spark, table, files(parquet_root, table.name, DAYS[:3]), name, target + "q")
    once = iceberg(target, "migrated", table.name)
    again = migrate_batches(spark, table, files(parquet_root, table.name, DAYS[2:3]), name, target + "q")
    assert again.keys_updated == again.rows_in  # every key was there already
    after = iceberg(target, "migrated", table.name)
    assert sorted_rows(after.scan().to_arrow()) == sorted_rows(once.scan().to_arrow())
    # nothing newer arrived: whatever the commit rewrote, it holds as many rows as before
    summary = after.current_snapshot().summary
    assert int(summary.get("total-records")) == int(once.current_snapshot().summary.get("total-records"))


def test_snapshot_replaces_the_whole_dimension_in_one_commit(spark, parquet_root, tmp_path):
    table = TABLES["dim_space"]
    target = str(tmp_path / "dim_space")
    name = identifier(spark, target, table.name)
    snapshot = read(layout.parquet_snapshot(parquet_root, table.name)).uris
    replace_snapshot(spark, table, snapshot, name, target + "q")
    first_snapshots = len(iceberg(target, "migrated", table.name).snapshots())
    report = replace_snapshot(spark, table, snapshot, name, target + "q")
    expected = sorted(snapshot_rows(SAMPLE_SPEC, table.name), key=repr)
    assert read_table(table.name, target) == expected
    assert report.table_rows == len(expected) and report.rows_rejected == 0
    assert len(iceberg(target, "migrated", table.name).snapshots()) == first_snapshots + 1


def test_rows_without_key_or_timestamps_are_quarantined_not_dropped(spark, tmp_path):
    table = TABLES["fact_attendance"]
    good = (1, 2, 3, "organizer", "accepted", "h", "h", "p", "f", "j", dt.datetime(2019, 9, 1), dt.datetime(2019, 9, 1))
    no_key = (1, 2, None, "organizer", "accepted", "h", "h", "p", "f", "j", dt.datetime(2019, 9, 1),
              dt.datetime(2019, 9, 1))  # fmt: skip
    from teem_assets.migration import table_schema

    batch = str(tmp_path / "batch")
    spark.createDataFrame([good, no_key], table_schema(table)).write.parquet(batch)
    batch_files = [str(p) for p in Path(batch).glob("*.parquet")]
    target = str(tmp_path / "t")
    report = migrate_batches(spark, table, batch_files, identifier(spark, target, table.name), str(tmp_path / "q"))
    assert (report.rows_in, report.rows_rejected, report.table_rows) == (2, 1, 1)
    assert pq.read_table(str(tmp_path / "q")).num_rows == 1


def test_two_versions_with_the_same_updated_at_end_the_same_in_any_order(spark, tmp_path):
    """A key updated twice within one timestamp: whichever batch comes first, or both in one batch, the table
    ends with the same one of the two versions (the row hash breaks the tie), never both, never neither."""
    from teem_assets.migration import table_schema

    table = TABLES["fact_attendance"]
    at = dt.datetime(2019, 9, 2, 10, 30)
    first = (1, 2, 3, "organizer", "accepted", "h", "h", "p", "f", "j", dt.datetime(2019, 9, 1), at)
    second = (1, 2, 3, "organizer", "declined", "h", "h", "p", "f", "j", dt.datetime(2019, 9, 1), at)

    def batch(name: str, rows: list[tuple]) -> list[str]:
        folder = str(tmp_path / name)
        spark.createDataFrame(rows, table_schema(table)).coalesce(1).write.parquet(folder)
        return [str(p) for p in Path(folder).glob("*.parquet")]

    a, b, both = batch("a", [first]), batch("b", [second]), batch("both", [second, first])
    ended = {}
    for order, batches in {"a, b": [a, b], "b, a": [b, a], "one batch": [both]}.items():
        target = str(tmp_path / order.replace(", ", "-").replace(" ", "-"))
        for files_ in batches:
            migrate_batches(spark, table, files_, identifier(spark, target, table.name), target + "q")
        ended[order] = read_table(table.name, target)
    assert ended["a, b"] == ended["b, a"] == ended["one batch"]
    [row] = ended["a, b"]
    assert row[:12] in (first, second)


def test_a_late_update_that_moves_created_at_moves_the_row(spark, tmp_path):
    """A key's newer version whose `created_at` changed (another created_date partition): the table ends with
    one row for the key, the newer, in its new partition; an older version arriving after changes nothing."""
    from teem_assets.migration import table_schema

    table = TABLES["fact_attendance"]
    created, moved = dt.datetime(2019, 9, 1, 8), dt.datetime(2019, 9, 3, 8)
    other = (1, 2, 4, "organizer", "accepted", "h", "h", "p", "f", "j", created, dt.datetime(2019, 9, 1, 9))
    original = (1, 2, 3, "organizer", "accepted", "h", "h", "p", "f", "j", created, dt.datetime(2019, 9, 1, 9))
    newer = (1, 2, 3, "organizer", "declined", "h", "h", "p", "f", "j", moved, dt.datetime(2019, 9, 5, 9))

    def batch(name: str, rows: list[tuple]) -> list[str]:
        folder = str(tmp_path / name)
        spark.createDataFrame(rows, table_schema(table)).coalesce(1).write.parquet(folder)
        return [str(p) for p in Path(folder).glob("*.parquet")]

    target = identifier(spark, str(tmp_path / "t"), table.name)
    migrate_batches(spark, table, batch("first", [original, other]), target, str(tmp_path / "q"))
    report = migrate_batches(spark, table, batch("late", [newer]), target, str(tmp_path / "q"))
    assert report.keys_updated == 1
    assert read_table(table.name, str(tmp_path / "t")) == sorted([other, newer], key=repr)
    migrate_batches(spark, table, batch("replayed", [original]), target, str(tmp_path / "q"))
    assert read_table(table.name, str(tmp_path / "t")) == sorted([other, newer], key=repr)


def migrate_at_once(
    spark, parquet_root: str, table: str, target: str, groups: list[list[str]], start: threading.Barrier | None = None
) -> tuple[list[MigrationReport], list[str]]:
    """One writer per group of batch days, all released at the same moment into `target`'s table (with the other
    parties of `start`, when given); returns their reports and the conflicts they logged, once every one of them
    ended without an error."""
    name = identifier(spark, target, table)
    start = start or threading.Barrier(len(groups))
    errors: list[Exception] = []
    retried: list[str] = []
    reports: list[MigrationReport] = []

    def writer(days: list[str]) -> None:
        try:
            start.wait()
            reports.append(migrate_batches(spark, TABLES[table], files(parquet_root, table, days), name,
                                           target + "q", log=retried.append))  # fmt: skip
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(days,)) for days in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, [str(error)[:3000] for error in errors]
    return reports, retried


@pytest.mark.parametrize("table", FACTS)
def test_writers_of_one_table_at_once_converge(spark, parquet_root, tmp_path, table):
    """Three MERGEs of overlapping batches committed at the same moment: Iceberg rejects the commits that lost
    the race, each is run again against the new state, and the table ends as if they had run one by one."""
    target = str(tmp_path / "t")
    name = identifier(spark, target, table)
    migrate_batches(spark, TABLES[table], files(parquet_root, table, DAYS[:11]), name, target + "q")
    before = len(iceberg(target, "migrated", table).snapshots())
    _, retried = migrate_at_once(spark, parquet_root, table, target, [[day] for day in DAYS[11:]])
    assert read_table(table, target) == sorted(newest_by_key(table).values(), key=repr)
    # All three planned against the same snapshot: the first commit wins, the others conflict and run again.
    assert retried and all("conflicted with another writer" in line for line in retried), retried
    assert len(iceberg(target, "migrated", table).snapshots()) == before + 3  # one commit each, none lost


def test_writers_that_all_find_the_table_empty_converge_without_a_key_twice(spark, parquet_root, tmp_path):
    """Three writers of overlapping batches find the table empty, so each writes without MERGE's join, at the
    same moment: the first commit wins, Iceberg refuses the others (rows were added since they saw it empty),
    and each runs again, then as a MERGE. Had they appended, the week's keys would be in the table two or three
    times."""
    table = "fact_event_by_day"
    target = str(tmp_path / "t")
    reports, retried = migrate_at_once(spark, parquet_root, table, target, [DAYS[:7], DAYS[7:], DAYS])
    assert read_table(table, target) == sorted(newest_by_key(table).values(), key=repr)
    assert len(retried) >= 2 and all("conflicted with another writer" in line for line in retried), retried
    snapshots = iceberg(target, "migrated", table).snapshots()
    assert len(snapshots) == 3 and snapshots[0].summary.operation.value == "append"
    # the writer that found it empty updated no key; each that ran again as a MERGE updated the keys it shared
    assert sorted(r.keys_updated == 0 for r in reports) == [False, False, True]


def test_expiry_keeps_the_newest_snapshots_and_drops_the_files_only_older_ones_held(spark, tmp_path: Path) -> None:
    root = DataRoot(str(tmp_path), snapshot_retention_days=0)
    identifier = root.migrated_table(spark, "expiry")
    spark.sql(f"CREATE TABLE {identifier} (id bigint, value string) USING iceberg")
    for n in range(SNAPSHOTS_ALWAYS_KEPT + 3):
        spark.sql(f"INSERT OVERWRITE {identifier} VALUES ({n}, 'version {n}')")
    data = tmp_path / "warehouse" / "migrated" / "expiry" / "data"
    assert len(list(data.glob("*.parquet"))) == SNAPSHOTS_ALWAYS_KEPT + 3
    root.maintain(spark, identifier)
    assert spark.sql(f"SELECT count(*) FROM {identifier}.snapshots").first()[0] == SNAPSHOTS_ALWAYS_KEPT
    assert len(list(data.glob("*.parquet"))) == SNAPSHOTS_ALWAYS_KEPT  # each kept snapshot's own file
    assert [tuple(r) for r in spark.table(identifier).collect()] == [(12, "version 12")]
    for n in range(3):
        spark.sql(f"INSERT OVERWRITE {identifier} VALUES ({n}, 'again')")
    DataRoot(str(tmp_path)).maintain(spark, identifier)  # the default retention: every snapshot is younger
    assert spark.sql(f"SELECT count(*) FROM {identifier}.snapshots").first()[0] == SNAPSHOTS_ALWAYS_KEPT + 3


def test_orphan_files_are_swept_once_old_and_at_most_once_per_interval(spark, tmp_path: Path) -> None:
    """Files no snapshot references (a killed commit's) are removed once older than ORPHAN_AGE; younger ones
    may belong to a commit under way and stay; the sweep is recorded and not repeated within its interval."""
    root = DataRoot(str(tmp_path), orphan_sweep_days=7)
    identifier = root.migrated_table(spark, "orphans")
    spark.sql(f"CREATE TABLE {identifier} (id bigint, value string) USING iceberg")
    spark.sql(f"INSERT INTO {identifier} VALUES (1, 'kept')")
    data = tmp_path / "warehouse" / "migrated" / "orphans" / "data"
    [live] = data.glob("*.parquet")
    old, young, later = data / "00000-killed-old.parquet", data / "00001-killed-young.parquet", data / "later.parquet"
    for orphan in (old, young):
        shutil.copy(live, orphan)
    four_days_ago = time.time() - 4 * 24 * 3600
    os.utime(old, (four_days_ago, four_days_ago))

    root.maintain(spark, identifier)
    assert sorted(p.name for p in data.glob("*.parquet")) == sorted([live.name, young.name])
    assert [tuple(r) for r in spark.table(identifier).collect()] == [(1, "kept")]

    shutil.copy(live, later)
    os.utime(later, (four_days_ago, four_days_ago))
    root.maintain(spark, identifier)  # swept a moment ago: not due
    assert later.exists()
    DataRoot(str(tmp_path), orphan_sweep_days=0).maintain(spark, identifier)
    assert not later.exists() and young.exists() and live.exists()


def test_expiry_is_not_called_while_every_snapshot_is_younger_than_the_retention(spark, tmp_path: Path) -> None:
    """Iceberg's procedure costs seconds in a fresh process even to expire nothing: with no snapshot past the
    retention it is not called; with one, it is, and says what it deleted."""
    identifier = DataRoot(str(tmp_path)).migrated_table(spark, "young")
    spark.sql(f"CREATE TABLE {identifier} (id bigint) USING iceberg")
    spark.sql(f"INSERT OVERWRITE {identifier} VALUES (1)")
    time.sleep(1.1)  # the procedure's cut-off has whole seconds
    spark.sql(f"INSERT OVERWRITE {identifier} VALUES (2)")
    assert expire_snapshots(spark, identifier, dt.timedelta(days=7)) is None
    assert spark.sql(f"SELECT count(*) FROM {identifier}.snapshots").first()[0] == 2
    assert expire_snapshots(spark, identifier, dt.timedelta(0))["deleted_data_files_count"] == 0  # the 10 stay


def test_a_table_the_pipeline_creates_is_first_swept_an_interval_after_its_creation(spark, tmp_path: Path) -> None:
    """A sweep lists the table's whole location (measured: 6 s for a new table): a table counts as swept when
    created, and an old unreferenced file under it goes at the first sweep due after that."""
    root = DataRoot(str(tmp_path), orphan_sweep_days=7)
    identifier = root.migrated_table(spark, "fresh")
    create_table(spark, identifier, T.StructType([T.StructField("id", T.LongType())]), "id")
    spark.sql(f"INSERT INTO {identifier} VALUES (1)")
    data = tmp_path / "warehouse" / "migrated" / "fresh" / "data"
    [live] = data.rglob("*.parquet")
    orphan = live.parent / "00000-killed-old.parquet"
    shutil.copy(live, orphan)
    four_days_ago = time.time() - 4 * 24 * 3600
    os.utime(orphan, (four_days_ago, four_days_ago))
    root.maintain(spark, identifier)
    assert orphan.exists()
    DataRoot(str(tmp_path), orphan_sweep_days=0).maintain(spark, identifier)
    assert not orphan.exists() and live.exists()


def test_the_upkeep_and_a_merge_at_once_both_land(spark, parquet_root, tmp_path):
    """The weekly upkeep (compaction, manifests rewritten, expiry) and a daily MERGE of the same table released at
    the same moment, as a maintenance run and a batch run of different pools may be: whichever commits second is
    rebased or run again, and the table ends with every key's newest row, no value changed by the upkeep."""
    from teem_assets.maintenance import Thresholds, maintain

    table = "fact_attendance"
    target = str(tmp_path / "t")
    name = identifier(spark, target, table)
    for day in DAYS[:11]:  # a commit a day
        migrate_batches(spark, TABLES[table], files(parquet_root, table, [day]), name, target + "q")
    start = threading.Barrier(2)
    errors: list[Exception] = []
    upkeep = []

    def maintenance() -> None:
        try:
            start.wait()
            upkeep.append(maintain(spark, name, CREATED_DATE, Thresholds(32 << 20, 2, 0), dt.timedelta(days=7)))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=maintenance)]
    threads[0].start()
    migrate_at_once(spark, parquet_root, table, target, [DAYS[11:]], start)
    threads[0].join(600)
    assert not errors, [str(error)[:3000] for error in errors]
    assert read_table(table, target) == sorted(newest_by_key(table).values(), key=repr)
    [done] = upkeep
    assert done.manifests_rewritten > 0
    operations = [s.summary.operation.value for s in iceberg(target, "migrated", table).snapshots()]
    assert "replace" in operations and operations.count("overwrite") >= 1
