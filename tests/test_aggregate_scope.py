"""The days an aggregate run recomputes come from what the fact tables' commits changed since the last run
(Iceberg's changelog): exactly the days and weeks whose rows changed, before or after, for an update that
moves an event to another day, one that moves it back, a late attendance row and a batch replayed out of
order; and the recomputed tables always equal a computation from scratch."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aggregate_world import STAMP, World
from aggregate_world import T as Time
from psycopg2 import sql
from pyiceberg.table import Table as IcebergTable
from pyiceberg.table.snapshots import Snapshot
from tables import sorted_rows

from teem_assets.aggregates.compute import compute
from teem_assets.aggregates.inputs import read_warehouse
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.scope import every_day
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.migration import migrate_batches, replace_snapshot
from teem_assets.postgres.aggregates import EXPORTED, Export, export_since_last
from teem_assets.postgres.ddl import ensure_table
from teem_assets.redshift_types import arrow_schema
from teem_assets.stages import aggregate
from teem_assets.stages.request import StageRequest

D = dt.date


def _base_world() -> World:
    world = World()
    world.event(1, D(2019, 9, 4), Time(2019, 9, 4, 9), Time(2019, 9, 4, 10))  # pk 1: the one that moves
    world.event(2, D(2019, 9, 10), Time(2019, 9, 10, 13), Time(2019, 9, 10, 15))
    world.event(3, D(2019, 9, 20), Time(2019, 9, 20, 8), Time(2019, 9, 20, 9, 30))
    world.event(3, D(2019, 9, 21), Time(2019, 9, 21, 8), Time(2019, 9, 21, 9, 30))  # event 3 spans two days
    world.event(4, D(2019, 10, 1), Time(2019, 10, 1, 11), Time(2019, 10, 1, 12), space_pk=20)
    for event_pk, people in {1: [1, 2], 2: [2, 5], 3: [5], 4: [7, 8]}.items():
        for person in people:
            world.attend(event_pk, person)
    return world


class Warehouse:
    """Migrated tables in a folder root, written by the pipeline's own migration, one commit per batch."""

    def __init__(self, spark, folder: Path, world: World) -> None:
        self.spark, self.root, self.folder, self.world = spark, DataRoot(str(folder)), folder, world
        self.batches = 0
        for name in ("dim_space", "dim_company", "dim_calendar", "dim_date"):
            files = self._parquet(name, world._full_rows(name))
            replace_snapshot(spark, TABLES[name], files, self._table(name), str(folder / "quarantine" / name))

    def _table(self, name: str) -> str:
        return self.root.migrated_table(self.spark, name)

    def _parquet(self, name: str, rows: list[dict]) -> list[str]:
        self.batches += 1
        path = self.folder / "batches" / f"{name}-{self.batches}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(TABLES[name].typed_columns)), path)
        return [str(path)]

    def migrate(self, name: str, rows: list[dict], updated_at: dt.datetime) -> None:
        table = TABLES[name]
        full = [{**row, table.updated_at: updated_at} for row in rows]
        files = self._parquet(name, full)
        migrate_batches(self.spark, table, files, self._table(name), str(self.folder / "quarantine" / name))

    def aggregate(self) -> dict[str, list[D]]:
        """One aggregate stage; the values each aggregate recomputed."""
        request = StageRequest("aggregate", self.root.settings(), list(AGGREGATES), ["2019-09-01"])
        report = aggregate.run(self.spark, self.root, request)
        found = {}
        for item in report.materializations:
            name = item.asset_key.split("/")[-1]
            found[name] = [D.fromisoformat(v) for v in item.metadata[aggregate.RECOMPUTED]["raw_value"]]
        return found

    def assert_equal_to_a_computation_from_scratch(self, names: tuple[str, ...] = tuple(AGGREGATES)) -> None:
        migrated = {name: self._table(name) for name in TABLES}
        warehouse = read_warehouse(self.spark, migrated)
        for name in names:
            output = AGGREGATES[name]
            columns = list(output.column_names)
            expected = compute(output, warehouse, every_day(warehouse, "test")).select(*columns).collect()
            stored = self.spark.table(self.root.aggregate_table(self.spark, name)).select(*columns).collect()
            assert len(stored) > 0
            assert sorted(map(tuple, stored), key=repr) == sorted(map(tuple, expected), key=repr), name


def _event_row(world: World, index: int) -> dict:
    return world._full_rows("fact_event_by_day")[index]


def _moved(row: dict, day: D) -> dict:
    start, end = "event_by_day_local_scheduled_start_time", "event_by_day_local_scheduled_end_time"
    shift = dt.datetime.combine(day, dt.time()) - dt.datetime.combine(row[start].date(), dt.time())
    return {**row, "local_date_pk": int(day.strftime("%Y%m%d")), start: row[start] + shift, end: row[end] + shift}


def _weeks(days: list[D]) -> list[D]:
    return sorted({d - dt.timedelta(days=d.weekday()) for d in days})


@pytest.fixture
def warehouse(spark, tmp_path: Path) -> Warehouse:
    world = _base_world()
    found = Warehouse(spark, tmp_path, world)
    found.migrate("fact_event_by_day", world._full_rows("fact_event_by_day"), STAMP)
    found.migrate("fact_attendance", world._full_rows("fact_attendance"), STAMP)
    first = found.aggregate()
    assert first["agg_hourly_space"] == [D(2019, 9, 4), D(2019, 9, 10), D(2019, 9, 20), D(2019, 9, 21), D(2019, 10, 1)]
    return found


def test_a_move_to_another_day_and_back_recomputes_both_days_and_nothing_else(warehouse: Warehouse) -> None:
    warehouse.assert_equal_to_a_computation_from_scratch()  # the first computation (every test's starting point)
    row = _event_row(warehouse.world, 0)  # event 1 on Wednesday 2019-09-04
    warehouse.migrate("fact_event_by_day", [_moved(row, D(2019, 9, 12))], STAMP + dt.timedelta(days=1))
    moved = warehouse.aggregate()
    assert moved["agg_hourly_space"] == [D(2019, 9, 4), D(2019, 9, 12)]
    assert moved["week_people_count"] == [D(2019, 9, 2), D(2019, 9, 9)]
    warehouse.assert_equal_to_a_computation_from_scratch()

    warehouse.migrate("fact_event_by_day", [row], STAMP + dt.timedelta(days=2))  # back, as a newer version
    back = warehouse.aggregate()
    assert back["agg_hourly_space"] == [D(2019, 9, 4), D(2019, 9, 12)]
    assert back["week_people_count"] == [D(2019, 9, 2), D(2019, 9, 9)]
    warehouse.assert_equal_to_a_computation_from_scratch()

    assert warehouse.aggregate() == {"agg_hourly_space": [], "week_people_count": []}  # nothing changed since


def test_late_attendance_recomputes_every_day_of_its_event(warehouse: Warehouse) -> None:
    world = warehouse.world
    world.attend(3, 7)  # dave joins event 3 (2019-09-20 and -21) a week later
    late = world._full_rows("fact_attendance")[-1]
    warehouse.migrate("fact_attendance", [late], STAMP + dt.timedelta(days=7))
    found = warehouse.aggregate()
    assert found["agg_hourly_space"] == [D(2019, 9, 20), D(2019, 9, 21)]
    assert found["week_people_count"] == [D(2019, 9, 16)]
    warehouse.assert_equal_to_a_computation_from_scratch()

    # an attendance row moved from event 2 to event 4: the days of both events (its old and new version)
    moved = {**world._full_rows("fact_attendance")[2], "event_pk": 4}
    warehouse.migrate("fact_attendance", [moved], STAMP + dt.timedelta(days=8))
    found = warehouse.aggregate()
    assert found["agg_hourly_space"] == [D(2019, 9, 10), D(2019, 10, 1)]
    assert found["week_people_count"] == _weeks([D(2019, 9, 10), D(2019, 10, 1)])
    warehouse.assert_equal_to_a_computation_from_scratch()


def test_a_batch_replayed_out_of_order_recomputes_only_what_it_still_changes(warehouse: Warehouse) -> None:
    row = _event_row(warehouse.world, 1)  # event 2 on 2019-09-10
    older, newer = _moved(row, D(2019, 9, 11)), _moved(row, D(2019, 9, 13))
    warehouse.migrate("fact_event_by_day", [newer], STAMP + dt.timedelta(days=3))
    assert warehouse.aggregate()["agg_hourly_space"] == [D(2019, 9, 10), D(2019, 9, 13)]

    # the batch of day 2 arrives after the batch of day 3: its version of event 2 is older and loses; its new
    # event (pk 5, on 2019-09-25) is the only change it makes
    fresh = World()
    fresh.event(5, D(2019, 9, 25), Time(2019, 9, 25, 10), Time(2019, 9, 25, 11))
    new_event = {**fresh._full_rows("fact_event_by_day")[0], "event_by_day_pk": 99}
    warehouse.migrate("fact_event_by_day", [older, new_event], STAMP + dt.timedelta(days=2))
    found = warehouse.aggregate()
    assert found["agg_hourly_space"] == [D(2019, 9, 25)]
    assert found["week_people_count"] == [D(2019, 9, 23)]
    warehouse.assert_equal_to_a_computation_from_scratch()

    # replayed again, whole: it changes nothing, and nothing is recomputed
    warehouse.migrate("fact_event_by_day", [older, new_event], STAMP + dt.timedelta(days=2))
    assert warehouse.aggregate() == {"agg_hourly_space": [], "week_people_count": []}


def test_a_history_that_no_longer_reaches_the_last_computation_recomputes_every_day(warehouse: Warehouse) -> None:
    events = warehouse._table("fact_event_by_day")
    row = _event_row(warehouse.world, 0)
    warehouse.migrate("fact_event_by_day", [_moved(row, D(2019, 9, 12))], STAMP + dt.timedelta(days=1))
    newest = warehouse.spark.sql(f"SELECT snapshot_id FROM {events}.refs WHERE name = 'main'").first()[0]
    catalog, relative = events.split(".", 1)
    warehouse.spark.sql(
        f"CALL {catalog}.system.expire_snapshots(table => '{relative}', "
        f"older_than => TIMESTAMP '2999-01-01 00:00:00', retain_last => 1)"
    )
    assert warehouse.spark.sql(f"SELECT count(*) FROM {events}.snapshots").first()[0] == 1
    assert warehouse.spark.sql(f"SELECT snapshot_id FROM {events}.snapshots").first()[0] == newest
    report = aggregate.run(
        warehouse.spark,
        warehouse.root,
        StageRequest("aggregate", warehouse.root.settings(), ["agg_hourly_space"], ["2019-09-02"]),
    )
    [hourly] = report.materializations
    assert hourly.metadata["every_value_recomputed"]["raw_value"] is True
    assert "no longer reaches" in hourly.metadata["why_recomputed"]["raw_value"]
    warehouse.assert_equal_to_a_computation_from_scratch(("agg_hourly_space",))  # 2019-09-04 emptied too


def _exported_rows(connection, schema: str, output: Aggregate) -> list[tuple]:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in output.column_names)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT {} FROM {}.{}").format(columns, sql.Identifier(schema), sql.Identifier(output.name))
        )
        return sorted(cursor.fetchall(), key=repr)


class _Rendezvous:
    """An Iceberg table whose current_snapshot() waits (up to 3 s) for the other export to get there too: two
    exports that do not take turns both read it before either commits."""

    def __init__(self, table: IcebergTable, arrived: threading.Barrier) -> None:
        self._table, self._arrived = table, arrived

    def current_snapshot(self) -> Snapshot | None:
        with contextlib.suppress(threading.BrokenBarrierError):
            self._arrived.wait(3)
        return self._table.current_snapshot()

    def __getattr__(self, name: str) -> object:
        return getattr(self._table, name)


def _two_first_exports_at_once(url: str, schema: str, output: Aggregate, warehouse: Warehouse) -> None:
    """Two first exports of one aggregate (no snapshot recorded yet), from two instances, at once, its tables
    already there (another aggregate exported before): they take turns, and the table holds each row once."""
    other = AGGREGATES["week_people_count"]
    connection = psycopg2.connect(url)
    try:
        tables = warehouse.root.aggregates_database
        export_since_last(connection, other, schema, warehouse.root.iceberg_table(tables, other.name))
        with connection, connection.cursor() as cursor:
            ensure_table(cursor, output, schema)
    finally:
        connection.close()
    arrived = threading.Barrier(2)

    def export() -> Export:
        connection = psycopg2.connect(url)
        try:
            source = warehouse.root.iceberg_table(warehouse.root.aggregates_database, output.name)
            return export_since_last(connection, output, schema, _Rendezvous(source, arrived))
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        done = [f.result() for f in [pool.submit(export), pool.submit(export)]]
    assert arrived.broken  # the second reached the table only after the first had committed
    assert sorted(d.values is None for d in done) == [False, True]  # one copied everything, the other nothing
    connection = psycopg2.connect(url)
    try:
        source = warehouse.root.iceberg_table(warehouse.root.aggregates_database, output.name)
        expected = sorted_rows(source.scan().to_arrow(), list(output.column_names))
        assert _exported_rows(connection, schema, output) == expected
    finally:
        connection.close()


def test_an_export_after_skipped_ones_catches_up_and_one_past_the_history_copies_everything(
    warehouse: Warehouse, postgres_url: str, pg_schema: str
) -> None:
    output = AGGREGATES["agg_hourly_space"]
    connection = psycopg2.connect(postgres_url)

    def export() -> Export:
        source = warehouse.root.iceberg_table(warehouse.root.aggregates_database, output.name)
        done = export_since_last(connection, output, pg_schema, source)
        at_export = source.scan(snapshot_id=done.snapshot_id).to_arrow()
        assert _exported_rows(connection, pg_schema, output) == sorted_rows(at_export, list(output.column_names))
        return done

    try:
        _two_first_exports_at_once(postgres_url, pg_schema, output, warehouse)
        assert export().values == []  # the first (both above) exported every row: nothing since
        # two aggregate commits no export saw (its runs skipped it, or it failed and rolled back)
        row = _event_row(warehouse.world, 0)  # event 1, 2019-09-04, moves to the 12th
        warehouse.migrate("fact_event_by_day", [_moved(row, D(2019, 9, 12))], STAMP + dt.timedelta(days=1))
        warehouse.aggregate()
        warehouse.world.attend(3, 7)  # a late attendance of event 3 (the 20th and 21st)
        warehouse.migrate(
            "fact_attendance", [warehouse.world._full_rows("fact_attendance")[-1]], STAMP + dt.timedelta(days=7)
        )
        warehouse.aggregate()
        caught_up = export()
        assert caught_up.values == [D(2019, 9, 4), D(2019, 9, 12), D(2019, 9, 20), D(2019, 9, 21)]  # both commits'
        # the snapshot it last exported is gone from the table's history (expired): it copies the whole table
        with connection, connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("UPDATE {}.{} SET snapshot_id = -1").format(sql.Identifier(pg_schema), sql.Identifier(EXPORTED))
            )
            cursor.execute(
                sql.SQL("DELETE FROM {}.{} WHERE date = '2019-10-01'").format(
                    sql.Identifier(pg_schema), sql.Identifier(output.name)
                )
            )  # a value no commit since touched: only a whole copy brings it back
        assert export().values is None
    finally:
        connection.close()
