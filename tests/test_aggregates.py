"""The aggregate assets on generated data: Spark against the PostgreSQL reference on the whole sample, the
export, the check failing on one wrong minute, and a late update recomputing the day it belongs to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job
from tables import aggregate_values, iceberg, iceberg_rows, sorted_rows

from teem_assets.aggregates.outputs import AGG_HOURLY_SPACE, AGGREGATES, Aggregate
from teem_assets.aggregates.store import partition_rows
from teem_assets.catalogue import TABLES
from teem_assets.postgres.aggregates import compare_with_reference
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec


def _values(root: Path, aggregate: Aggregate) -> list[dt.date]:
    return aggregate_values(root, aggregate)


def _every_row(root: Path, aggregate: Aggregate) -> list[tuple]:
    """The whole aggregate table as pyiceberg reads it (not through the export's own reader)."""
    return sorted_rows(iceberg_rows(root, "aggregates", aggregate.name), list(aggregate.column_names))


@pytest.mark.parametrize("name", list(AGGREGATES))
def test_spark_and_the_reference_agree_on_the_whole_sample(loaded, postgres_url: str, name: str) -> None:
    root, schema, _ = loaded
    aggregate = AGGREGATES[name]
    values = _values(root, aggregate)
    assert len(values) >= (14 if aggregate is AGG_HOURLY_SPACE else 2)
    connection = psycopg2.connect(postgres_url)
    try:
        rows = partition_rows(iceberg(root, "aggregates", name), aggregate, values)
        comparison = compare_with_reference(connection, aggregate, schema, values, rows)
        assert comparison.equal, comparison.first_differences
        assert comparison.spark_rows == comparison.reference_rows > 300
        with connection.cursor() as cursor:  # the export holds exactly the Parquet rows
            cursor.execute(f'SELECT * FROM "{schema}"."{name}"')
            exported = sorted(cursor.fetchall(), key=repr)
    finally:
        connection.close()
    assert exported == _every_row(root, aggregate)


def test_the_check_fails_on_one_wrong_minute_and_names_the_row(loaded, postgres_url: str) -> None:
    root, schema, _ = loaded
    values = _values(root, AGG_HOURLY_SPACE)
    table = pa.Table.from_batches(list(partition_rows(iceberg(root, "aggregates", AGG_HOURLY_SPACE.name),
                                                      AGG_HOURLY_SPACE, values)))  # fmt: skip
    minutes = table.column("sum_scheduled_duration_minutes").to_pylist()
    minutes[7] += 1  # the predecessor's port: +1 minute on one row
    wrong = table.set_column(table.schema.get_field_index("sum_scheduled_duration_minutes"),
                             "sum_scheduled_duration_minutes", pa.array(minutes, pa.int64()))  # fmt: skip
    connection = psycopg2.connect(postgres_url)
    try:
        comparison = compare_with_reference(connection, AGG_HOURLY_SPACE, schema, values, wrong.to_batches())
    finally:
        connection.close()
    assert not comparison.equal
    assert (comparison.only_in_spark, comparison.only_in_reference) == (1, 1)
    changed = table.slice(7, 1).to_pylist()[0]
    assert [row[0] for row in comparison.first_differences] == ["spark", "reference"]
    assert comparison.first_differences[1][1:] == tuple(changed.values())
    assert comparison.first_differences[0][17] == changed["sum_scheduled_duration_minutes"] + 1


def _day_minutes(root: Path, day: dt.date) -> int:
    rows = iceberg_rows(root, "aggregates", AGG_HOURLY_SPACE.name)
    rows = rows.filter(pc.equal(rows.column("date"), pa.scalar(day, pa.date32())))
    return pc.sum(rows.column("sum_scheduled_duration_minutes")).as_py()


def test_an_update_three_batches_later_changes_its_day(tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark):
    spec = SampleSpec(start=dt.date(2019, 9, 1), days=5, seed=7)
    generate_sample(str(tmp_path), spec, UnloadOptions())
    defs = definitions(monkeypatch, tmp_path, postgres_url, pg_schema)
    first = run_job(defs, "migration_job", "2019-09-01", "2019-09-04")
    assert first.success
    assert materializations(first)["aggregates/agg_hourly_space"]["every_value_recomputed"] is True  # new dimensions
    day = dt.date(2019, 9, 2)  # a Monday: the sample's meetings are held on working days
    before = _day_minutes(tmp_path, day)

    # batch D+3 carries one row only: an event of day D, one hour longer, updated on D+3, and its created_at
    # corrected to D+2 (the row moves to another created_date partition of the migrated table)
    table = TABLES["fact_event_by_day"]
    column = {name: i for i, name in enumerate(table.column_names)}
    start, end = column["event_by_day_local_scheduled_start_time"], column["event_by_day_local_scheduled_end_time"]

    def plain(row: list) -> bool:
        on_day = row[start] is not None and row[start].date() == day and row[end] is not None
        return on_day and row[end] > row[start] and row[end].hour <= 21 and row[end].date() == day

    candidates = [list(r) for r in batch_rows(spec, table.name, day) if plain(list(r))]
    candidates = [r for r in candidates if r[column["event_by_day_cancelled_at"]] is None]
    updated = candidates[0]
    updated[end] += dt.timedelta(hours=1)
    updated[column[table.updated_at]] = dt.datetime(2019, 9, 5, 12, 0, 0, 123456)
    assert updated[column[table.created_at]].date() != dt.date(2019, 9, 4)
    updated[column[table.created_at]] = dt.datetime(2019, 9, 4, 7, 30)
    replace_raw_batch(tmp_path, table, "2019-09-05", [updated])

    monkeypatch.setenv("TEEM_VOLUME_THRESHOLD", "0.000001")  # a batch of one row, on purpose
    result = run_job(defs, "batch_job", "2019-09-05")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations if e.check_name != "companies_still_present")
    [companies] = [e for e in evaluations if e.check_name == "companies_still_present"]
    assert not companies.passed  # a one-row batch misses companies: a warning, which blocks nothing
    hourly = materializations(result)["aggregates/agg_hourly_space"]
    assert hourly["every_value_recomputed"] is False
    assert day.isoformat() in hourly["recomputed"]
    assert _day_minutes(tmp_path, day) == before + 60
    events = iceberg_rows(tmp_path, "migrated", table.name)
    keys = events.column(table.primary_key[0]).to_pylist()
    assert len(keys) == len(set(keys))  # one row per key: the moved one is not inserted twice
    [moved] = [r for r in events.to_pylist() if r[table.primary_key[0]] == updated[column[table.primary_key[0]]]]
    assert (moved[table.created_at], moved["created_date"]) == (dt.datetime(2019, 9, 4, 7, 30), dt.date(2019, 9, 4))
    assert hourly["dagster/row_count"] == iceberg_rows(tmp_path, "aggregates", AGG_HOURLY_SPACE.name).num_rows > 0
    exported = materializations(result)["postgres/agg_hourly_space"]
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        total = f'SELECT sum(sum_scheduled_duration_minutes) FROM "{pg_schema}".agg_hourly_space WHERE date = %s'
        cursor.execute(total, (day,))
        assert cursor.fetchone()[0] == before + 60
        cursor.execute(f'SELECT count(*) FROM "{pg_schema}".agg_hourly_space')
        assert cursor.fetchone()[0] == exported["dagster/row_count"] == hourly["dagster/row_count"]
        cursor.execute(f'SELECT count(*) FROM "{pg_schema}".fact_event_by_day')
        assert cursor.fetchone()[0] == len(keys)
    connection.close()
