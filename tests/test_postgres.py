"""The PostgreSQL stage against a real server: exact values, idempotent and order-free loads, atomicity."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_SPEC
from dagster_helpers import run_job
from oracle import current_rows, newest_by_key
from servers import free_port
from tables import batch_table

from resources.postgres import PostgresResource, PostgresUnavailable
from teem_assets.catalogue import TABLES
from teem_assets.postgres.ddl import SchemaConflict, ensure_table
from teem_assets.postgres.load import batch_fingerprint, table_fingerprint, upsert
from teem_assets.settings import load
from teem_assets.unload.decode import arrow_schema

ROOT = Path(__file__).resolve().parents[1]
DAYS = [d.isoformat() for d in SAMPLE_SPEC.batch_dates]


def fetch(url: str, schema: str, table: str) -> list[tuple]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        columns = ", ".join(f'"{c}"' for c in TABLES[table].column_names)
        cursor.execute(f'SELECT {columns} FROM "{schema}"."{table}"')
        rows = cursor.fetchall()
    connection.close()
    return sorted(rows, key=repr)


@pytest.mark.parametrize("table", list(TABLES))
def test_every_value_survives_unload_parquet_migrated_postgres(loaded, postgres_url, table):
    _, schema, _ = loaded
    assert fetch(postgres_url, schema, table) == current_rows(table)


def test_the_same_partition_three_times_leaves_the_same_table(loaded, postgres_url):
    _, schema, defs = loaded
    before = {t: fetch(postgres_url, schema, t) for t in ("fact_event_by_day", "fact_attendance")}
    for _ in range(3):
        assert run_job(defs, "batch_job", DAYS[4]).success
    assert {t: fetch(postgres_url, schema, t) for t in before} == before


def _batch(table: str, root: Path, day: str):
    return batch_table(root, table, day).to_batches(5000)


@pytest.mark.parametrize("table", ["fact_event_by_day", "fact_attendance"])
def test_batches_in_reverse_order_end_in_the_same_table(loaded, postgres_url, pg_schema, table):
    root, _, _ = loaded
    definition = TABLES[table]
    for order, schema in ((DAYS, pg_schema), (list(reversed(DAYS)), pg_schema + "_r")):
        for day in order:
            connection = psycopg2.connect(postgres_url)
            upsert(connection, definition, schema, _batch(table, root, day))
            connection.close()
    expected = sorted(newest_by_key(table).values(), key=repr)
    assert fetch(postgres_url, pg_schema, table) == expected
    assert fetch(postgres_url, pg_schema + "_r", table) == expected
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{pg_schema}_r" CASCADE')
    connection.close()


KILLED_LOAD = """
import sys, time, psycopg2, pyarrow.parquet as pq
from teem_assets.catalogue import TABLES
from teem_assets.postgres.load import upsert
url, schema, path = sys.argv[1:4]
batches = pq.read_table(path).to_batches(200)  # the batch, written to one file by the test
def slow():
    for batch in batches:
        yield batch
        time.sleep(0.2)
upsert(psycopg2.connect(url, application_name="teem-killed-load"), TABLES["fact_attendance"], schema, slow())
"""


def test_a_load_killed_during_copy_leaves_the_table_as_it_was(loaded, postgres_url, pg_schema, tmp_path):
    root, _, _ = loaded
    table = TABLES["fact_attendance"]
    connection = psycopg2.connect(postgres_url)
    upsert(connection, table, pg_schema, _batch(table.name, root, DAYS[0]))
    with connection, connection.cursor() as cursor:
        before = table_fingerprint(cursor, table, pg_schema)
    path = str(tmp_path / "batch.parquet")
    pq.write_table(batch_table(root, table.name, DAYS[1]), path)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_LOAD, postgres_url, pg_schema, path],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        copying = False
        while time.monotonic() < deadline and not copying:
            with connection, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'teem-killed-load' "
                    "AND query LIKE 'COPY%%'"
                )
                copying = cursor.fetchone()[0] > 0
            time.sleep(0.1)
        assert copying, "the load never reached its COPY"
        time.sleep(0.5)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    with connection, connection.cursor() as cursor:
        assert table_fingerprint(cursor, table, pg_schema) == before
    retried = upsert(connection, table, pg_schema, _batch(table.name, root, DAYS[1]))
    assert retried.rows_sent > 0
    with connection, connection.cursor() as cursor:
        after = table_fingerprint(cursor, table, pg_schema)
    two_days = dataclasses.replace(SAMPLE_SPEC, days=2)
    newest = pa.Table.from_pylist(
        [dict(zip(table.column_names, row)) for row in newest_by_key(table.name, two_days).values()],
        schema=arrow_schema(table.typed_columns),
    )
    assert after == batch_fingerprint(table, newest.combine_chunks().to_batches()[0])
    connection.close()
    # every value, not only the keys and updated-at the fingerprint covers
    expected = sorted((tuple(row.values()) for row in newest.to_pylist()), key=repr)
    assert fetch(postgres_url, pg_schema, table.name) == expected


def test_a_server_that_is_down_is_named_and_nothing_is_written():
    port = free_port()
    resource = PostgresResource(url=f"postgresql://teem:s3cret-pw@127.0.0.1:{port}/teem")
    with pytest.raises(PostgresUnavailable) as raised:
        resource.connect()
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "s3cret-pw" not in message


def test_columns_are_added_and_type_conflicts_stop(postgres_url, pg_schema):
    table = TABLES["dim_company"]
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        ensure_table(cursor, table, pg_schema)
        cursor.execute(f'ALTER TABLE "{pg_schema}".dim_company DROP COLUMN company_hours_end')
        assert ensure_table(cursor, table, pg_schema) == ["company_hours_end"]
        cursor.execute(f'ALTER TABLE "{pg_schema}".dim_company ALTER COLUMN company_desired_util_pct TYPE bigint')
        with pytest.raises(SchemaConflict, match="company_desired_util_pct is bigint"):
            ensure_table(cursor, table, pg_schema)
    connection.close()


def test_the_embedded_server_starts_without_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("TEEM_HOME", str(tmp_path))
    for name in ("TEEM_POSTGRES_URL", "TEEM_PG_HOST"):
        monkeypatch.delenv(name, raising=False)
    resource = PostgresResource.from_settings(load())
    connection = resource.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    connection.close()
    assert (tmp_path / "postgres" / "PG_VERSION").exists()


def test_two_loads_creating_one_table_at_once_create_it_once(postgres_url, pg_schema):
    """The first loads of a table from two instances at once: the second waits for the first's transaction
    instead of failing on PostgreSQL's catalog uniqueness (two concurrent CREATE TABLE IF NOT EXISTS)."""
    table = TABLES["dim_space"]
    first = psycopg2.connect(postgres_url)
    second = psycopg2.connect(postgres_url)
    outcome: list[object] = []

    def second_load() -> None:
        try:
            with second, second.cursor() as cursor:
                outcome.append(ensure_table(cursor, table, pg_schema))
        except psycopg2.Error as error:
            outcome.append(error)

    try:
        with first, first.cursor() as cursor:
            ensure_table(cursor, table, pg_schema)
            thread = threading.Thread(target=second_load)
            thread.start()
            waiting = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cursor.execute(waiting, (second.get_backend_pid(),))
                if cursor.fetchone()[0] == "Lock":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the second load never waited for the first")
        thread.join(30)
        assert outcome == [[]]  # created by the first, nothing left for the second to add
    finally:
        first.close()
        second.close()
