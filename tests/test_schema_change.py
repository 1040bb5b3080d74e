"""A column added to the warehouse table (and so to its unload and the catalogue) and a varchar widened, between
two daily batches: the Iceberg table and the PostgreSQL copy follow, the rows already there read the new column
as NULL, every value exact; then a type that cannot widen (bigint to int) stops the migrate stage, naming the
column and both types, before any table changes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_helpers import definitions, replace_raw_batch, run_job

from teem_assets.catalogue import FACTS, TABLES, Column, Table
from teem_assets.data_root import DataRoot
from teem_assets.redshift_types import parse_type
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.table_state import java_table, ref_snapshot_id

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=3, seed=5)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
ATTENDANCE = TABLES["fact_attendance"]
LONG_ROLE = "a role name longer than 32 characters"


def _with_columns(table: Table, **types: str) -> Table:
    """`table` with the columns of `types` retyped, and those it lacks added at its end."""
    columns = [Column(c.name, parse_type(types.pop(c.name))) if c.name in types else c for c in table.columns]
    return dataclasses.replace(table, columns=(*columns, *[Column(n, parse_type(t)) for n, t in types.items()]))


@pytest.fixture
def catalogue() -> Iterator[Callable[[Table], None]]:
    """Changes the catalogue's entry of a table (where every stage and asset looks it up) for the test."""
    tables, facts = dict(TABLES), list(FACTS)

    def says(table: Table) -> None:
        TABLES[table.name] = table
        FACTS[[t.name for t in FACTS].index(table.name)] = table

    yield says
    TABLES.update(tables)
    FACTS[:] = facts


def _run(defs: dg.Definitions, day: str) -> dg.ExecuteInProcessResult:
    assets = [f"{layer}/{ATTENDANCE.name}" for layer in ("parquet", "migrated", "postgres")]
    return run_job(defs, "batch_job", day, raise_on_error=False, assets=assets)


def _iceberg_rows(spark, identifier: str, columns: list[str]) -> list[tuple]:
    return sorted(tuple(row) for row in spark.table(identifier).select(*columns).collect())


def _postgres(postgres_url: str, query: str, *parameters: object) -> list[tuple]:
    connection = psycopg2.connect(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, parameters)
            return sorted(cursor.fetchall())
    finally:
        connection.close()


def test_a_column_added_and_a_varchar_widened_then_a_type_that_cannot_widen(
    spark, tmp_path: Path, monkeypatch, postgres_url, pg_schema, catalogue
) -> None:
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions(slices=2))
    assert _run(definitions(monkeypatch, root, postgres_url, pg_schema), DAYS[0]).success
    first_keys = {row[2] for row in batch_rows(SPEC, ATTENDANCE.name, SPEC.batch_dates[0])}

    wider = _with_columns(ATTENDANCE, attendance_role="varchar(64)", attendance_note="varchar(16)")
    catalogue(wider)
    role = ATTENDANCE.column_names.index("attendance_role")
    second = [
        (*row[:role], LONG_ROLE if n % 2 else row[role], *row[role + 1 :], f"note {n}" if n % 3 else None)
        for n, row in enumerate(batch_rows(SPEC, ATTENDANCE.name, SPEC.batch_dates[1]))
    ]
    replace_raw_batch(root, wider, DAYS[1], second)
    assert _run(definitions(monkeypatch, root, postgres_url, pg_schema), DAYS[1]).success

    columns = ["attendance_pk", "attendance_role", "attendance_note"]
    identifier = DataRoot(str(root)).migrated_table(spark, ATTENDANCE.name)
    migrated = _iceberg_rows(spark, identifier, columns)
    written = {row[2]: (row[role], row[-1]) for row in second}
    untouched = [r for r in migrated if r[0] not in written]
    assert untouched and {r[0] for r in untouched} <= first_keys and {r[2] for r in untouched} == {None}
    assert {r[0]: (r[1], r[2]) for r in migrated if r[0] in written} == written
    table = f'"{pg_schema}"."{ATTENDANCE.name}"'
    assert _postgres(postgres_url, f"SELECT {', '.join(columns)} FROM {table}") == migrated
    types = _postgres(
        postgres_url,
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s AND column_name IN ('attendance_role', 'attendance_note')",
        pg_schema,
        ATTENDANCE.name,
    )
    assert types == [("attendance_note", "character varying", 16), ("attendance_role", "character varying", 64)]

    before = ref_snapshot_id(java_table(spark, identifier))
    narrower = _with_columns(wider, event_pk="int")  # every value fits, but int cannot hold what bigint may
    catalogue(narrower)
    third = [(*row, None) for row in batch_rows(SPEC, ATTENDANCE.name, SPEC.batch_dates[2])]
    replace_raw_batch(root, narrower, DAYS[2], third)
    result = _run(definitions(monkeypatch, root, postgres_url, pg_schema), DAYS[2])
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "migrated_batches"
    message = str(failure.event_specific_data.error)
    assert "event_pk: bigint in the table, int in the catalogue" in message and "not retried" in message
    assert ref_snapshot_id(java_table(spark, identifier)) == before
    assert _postgres(postgres_url, f"SELECT {', '.join(columns)} FROM {table}") == migrated
