"""A PostgreSQL backend terminated while loading (pg_terminate_backend, as a failover or an operator would):
during the COPY, during the upsert and while a dimension load waits for another writer. The table stays as it
was, the error names the server and the table (never the password), and loading again completes. A dimension
load keeps what a DBA added to its table and never waits for readers; kept waiting by a writer past the lock
timeout, it fails naming who holds the lock. Every load leaves its table's planner statistics as it left the
rows, whatever autovacuum has done yet. A run killed in the middle of a statement leaves it running for no
longer than the server takes to notice: the next run's load gets the table."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psycopg2
import pyarrow as pa
import pytest

from resources.postgres import PostgresResource
from teem_assets.catalogue import TABLES, Table
from teem_assets.postgres.ddl import ensure_table
from teem_assets.postgres.keys import KeySet
from teem_assets.postgres.load import LoadFailed, replace, upsert
from teem_assets.redshift_types import arrow_schema

ATTENDANCE, COMPANY = TABLES["fact_attendance"], TABLES["dim_company"]
LOADER = "teem-fault-test-loader"
CANARY_PASSWORD = "canary-pg-password-7f3a"


def _rows(table: Table, keys: range, updated: dt.datetime) -> pa.Table:
    key = table.primary_key[0]
    rows = [{key: k, table.created_at: dt.datetime(2019, 9, 1), table.updated_at: updated} for k in keys]
    return pa.Table.from_pylist(rows, schema=arrow_schema(table.typed_columns))


def _contents(url: str, schema: str, table: Table) -> list[tuple]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}"."{table.name}" ORDER BY 1')
        found = cursor.fetchall()
    connection.close()
    return found


def _loader(url: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(url, application_name=LOADER, password=CANARY_PASSWORD)


def _terminate(watcher: psycopg2.extensions.connection, query_prefix: str, waiting_on_lock: bool) -> None:
    """Terminate the loader's backend once it runs a statement starting with `query_prefix`."""
    condition = "wait_event_type = 'Lock'" if waiting_on_lock else "true"
    deadline = time.monotonic() + 60
    with watcher.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                f"SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
                f"AND query ILIKE %s AND {condition}",
                (LOADER, f"{query_prefix}%"),
            )
            found = cursor.fetchone()
            if found:
                cursor.execute("SELECT pg_terminate_backend(%s)", (found[0],))
                return
            time.sleep(0.01)
    raise AssertionError(f"the loader never ran {query_prefix}")


def _load_in_thread(load: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            load()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _assert_clear(errors: list[BaseException], schema: str, table: Table, url: str, step: str) -> None:
    [error] = errors
    assert isinstance(error, LoadFailed), error
    message = str(error)
    connection = psycopg2.connect(url)
    server = f"{connection.info.host}:{connection.info.port}/{connection.info.dbname}"
    connection.close()
    assert f"loading {schema}.{table.name} on PostgreSQL {server} failed while {step}" in message
    assert "the table is unchanged" in message and "terminat" in message.lower()
    assert CANARY_PASSWORD not in message and CANARY_PASSWORD not in repr(error.__cause__)


@pytest.fixture
def watcher(postgres_url: str) -> Iterator[psycopg2.extensions.connection]:
    """Sees pg_stat_activity afresh at each look (autocommit: a transaction would keep its first snapshot)."""
    connection = psycopg2.connect(postgres_url)
    connection.autocommit = True
    yield connection
    connection.close()


@pytest.fixture
def reader(postgres_url: str) -> Iterator[psycopg2.extensions.connection]:
    """Another session, whose open transaction holds a lock on the table being loaded."""
    connection = psycopg2.connect(postgres_url)
    yield connection
    connection.rollback()
    connection.close()


def _loaded(postgres_url: str, pg_schema: str) -> list[tuple]:
    connection = _loader(postgres_url)
    upsert(connection, ATTENDANCE, pg_schema, _rows(ATTENDANCE, range(1, 101), dt.datetime(2019, 9, 1)).to_batches())
    connection.close()
    return _contents(postgres_url, pg_schema, ATTENDANCE)


NEWER = dt.datetime(2019, 9, 2)


def _newer_batch() -> pa.Table:
    return _rows(ATTENDANCE, range(50, 5001), NEWER)  # half updates, the rest new keys


def _retry_completes(postgres_url: str, pg_schema: str) -> None:
    connection = _loader(postgres_url)
    report = upsert(connection, ATTENDANCE, pg_schema, _newer_batch().to_batches(1000))
    connection.close()
    assert report.rows_sent == report.rows_written == 4951
    after = _contents(postgres_url, pg_schema, ATTENDANCE)
    updated = ATTENDANCE.column_names.index(ATTENDANCE.updated_at)
    assert len(after) == 5000 and sum(row[updated] == NEWER for row in after) == 4951


def test_a_backend_terminated_during_the_copy(postgres_url: str, pg_schema: str, watcher) -> None:
    before = _loaded(postgres_url, pg_schema)
    terminated = threading.Event()

    def slow_batches() -> Iterable[pa.RecordBatch]:
        batches = _newer_batch().to_batches(1000)
        yield batches[0]
        terminated.wait(60)  # the COPY is under way, waiting for more rows
        yield from batches[1:]

    connection = _loader(postgres_url)
    thread, errors = _load_in_thread(lambda: upsert(connection, ATTENDANCE, pg_schema, slow_batches()))
    _terminate(watcher, "COPY", waiting_on_lock=False)
    terminated.set()
    thread.join(60)
    _assert_clear(errors, pg_schema, ATTENDANCE, postgres_url, "copying the rows (COPY)")
    assert _contents(postgres_url, pg_schema, ATTENDANCE) == before
    _retry_completes(postgres_url, pg_schema)


def test_a_backend_terminated_during_the_upsert(postgres_url: str, pg_schema: str, watcher, reader) -> None:
    before = _loaded(postgres_url, pg_schema)
    with reader.cursor() as cursor:  # a reader's SHARE lock holds the upsert at its INSERT
        cursor.execute(f'LOCK TABLE "{pg_schema}".fact_attendance IN SHARE MODE')
    connection = _loader(postgres_url)
    thread, errors = _load_in_thread(lambda: upsert(connection, ATTENDANCE, pg_schema, _newer_batch().to_batches()))
    _terminate(watcher, "INSERT INTO", waiting_on_lock=True)
    thread.join(60)
    reader.rollback()
    _assert_clear(errors, pg_schema, ATTENDANCE, postgres_url, "upserting the rows")
    assert _contents(postgres_url, pg_schema, ATTENDANCE) == before
    _retry_completes(postgres_url, pg_schema)


def test_a_backend_terminated_while_the_dimension_load_waits_for_a_writer(
    postgres_url: str, pg_schema: str, watcher, reader
) -> None:
    first = _loader(postgres_url)
    replace(first, COMPANY, pg_schema, _rows(COMPANY, range(1, 11), dt.datetime(2019, 9, 1)).to_batches())
    first.close()
    before = _contents(postgres_url, pg_schema, COMPANY)
    with reader.cursor() as cursor:  # another writer's open transaction: the load's LOCK waits for it
        cursor.execute(f'UPDATE "{pg_schema}".dim_company SET company_pk = company_pk WHERE false')
    snapshot = _rows(COMPANY, range(1, 21), dt.datetime(2019, 9, 8))
    connection = _loader(postgres_url)
    thread, errors = _load_in_thread(lambda: replace(connection, COMPANY, pg_schema, snapshot.to_batches()))
    _terminate(watcher, "LOCK TABLE", waiting_on_lock=True)
    thread.join(60)
    reader.rollback()
    _assert_clear(errors, pg_schema, COMPANY, postgres_url, "locking the table against other writers")
    assert _contents(postgres_url, pg_schema, COMPANY) == before
    again = _loader(postgres_url)
    assert replace(again, COMPANY, pg_schema, snapshot.to_batches()).rows_sent == 20
    again.close()
    assert [row[0] for row in _contents(postgres_url, pg_schema, COMPANY)] == list(range(1, 21))


def _one(url: str, statement: str, *args: object) -> object:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(statement, args)
        found = cursor.fetchone()[0] if cursor.description else None
    connection.close()
    return found


def test_a_dimension_load_keeps_what_a_dba_added_and_never_waits_for_readers(
    postgres_url: str, pg_schema: str, reader
) -> None:
    table = f'"{pg_schema}".dim_company'
    first = _loader(postgres_url)
    replace(first, COMPANY, pg_schema, _rows(COMPANY, range(1, 11), dt.datetime(2019, 9, 1)).to_batches())
    first.close()
    _one(postgres_url, "DO $$ BEGIN CREATE ROLE teem_test_analyst NOLOGIN; EXCEPTION WHEN duplicate_object "
         "THEN NULL; END $$")  # fmt: skip
    _one(postgres_url, f'CREATE VIEW "{pg_schema}".companies_seen AS SELECT company_pk FROM {table}')
    _one(postgres_url, f"GRANT SELECT ON {table} TO teem_test_analyst")
    _one(postgres_url, f"CREATE INDEX dim_company_by_update ON {table} (edw_company_updated_at)")
    _one(postgres_url, f"COMMENT ON TABLE {table} IS 'kept by the DBA'")
    with reader.cursor() as cursor:  # a long reader, inside its transaction
        cursor.execute(f"SELECT count(*) FROM {table}")
    for keys, day in ((range(1, 21), 8), (range(5, 31), 15)):  # two loads, while it reads
        connection = _loader(postgres_url)
        thread, errors = _load_in_thread(
            lambda c=connection, k=keys, d=day: replace(
                c, COMPANY, pg_schema, _rows(COMPANY, k, dt.datetime(2019, 9, d)).to_batches()
            )
        )
        thread.join(30)
        assert not thread.is_alive() and errors == [], "the load waited for a reader"
        connection.close()
    reader.rollback()
    seen = _one(postgres_url, f'SELECT array_agg(company_pk ORDER BY company_pk) FROM "{pg_schema}".companies_seen')
    assert seen == list(range(5, 31))
    assert _one(postgres_url, "SELECT has_table_privilege('teem_test_analyst', %s, 'SELECT')", table) is True
    assert _one(postgres_url, "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
                pg_schema, "dim_company_by_update") == 1  # fmt: skip
    assert _one(postgres_url, "SELECT obj_description(%s::regclass, 'pg_class')", table) == "kept by the DBA"


def test_a_load_kept_waiting_past_the_lock_timeout_names_who_holds_the_lock(postgres_url: str, pg_schema: str) -> None:
    first = _loader(postgres_url)
    replace(first, COMPANY, pg_schema, _rows(COMPANY, range(1, 11), dt.datetime(2019, 9, 1)).to_batches())
    first.close()
    before = _contents(postgres_url, pg_schema, COMPANY)
    dba = psycopg2.connect(postgres_url, application_name="teem-test-dba-session")
    try:
        with dba.cursor() as cursor:  # an UPDATE left open: its transaction holds the table against writers
            cursor.execute(f'UPDATE "{pg_schema}".dim_company SET company_pk = company_pk WHERE false')
        loader = PostgresResource(url=postgres_url, schema_name=pg_schema, lock_timeout_seconds=0.5).connect()
        snapshot = _rows(COMPANY, range(1, 21), dt.datetime(2019, 9, 8))
        started = time.monotonic()
        with pytest.raises(LoadFailed) as failed:
            replace(loader, COMPANY, pg_schema, snapshot.to_batches())
        waited = time.monotonic() - started
        loader.close()
        message = str(failed.value)
        assert "failed while locking the table against other writers" in message
        assert f"held by process {dba.info.backend_pid} (application 'teem-test-dba-session'" in message
        assert "idle in transaction" in message
        assert waited < 10
    finally:
        dba.rollback()
        dba.close()
    assert _contents(postgres_url, pg_schema, COMPANY) == before


def _keys(rows: pa.Table) -> KeySet:
    return KeySet.of(rows.column(ATTENDANCE.primary_key[0]))


OLDER = dt.datetime(2019, 8, 31)


def _mixed_batch() -> pa.Table:
    """Newer versions of keys 50..100, older versions of keys 1..10 (ignored), new keys 101..5000."""
    return pa.concat_tables([_rows(ATTENDANCE, range(1, 11), OLDER), _newer_batch()])


@pytest.mark.parametrize("batch_rows", [1000, 100_000])
def test_the_upsert_given_the_keys_writes_what_the_staged_upsert_writes(
    postgres_url: str, pg_schema: str, batch_rows: int
) -> None:
    """The batch's keys let the new ones go straight in with COPY; the table ends the same, row for row."""
    base = _rows(ATTENDANCE, range(1, 101), dt.datetime(2019, 9, 1))
    key = ATTENDANCE.column_names.index(ATTENDANCE.primary_key[0])
    updated = ATTENDANCE.column_names.index(ATTENDANCE.updated_at)
    reports, contents = [], []
    for keys in (None, "given"):
        connection = _loader(postgres_url)
        with connection, connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{pg_schema}".fact_attendance')
        upsert(connection, ATTENDANCE, pg_schema, base.to_batches(), _keys(base) if keys else None)
        batch = _mixed_batch()
        reports.append(
            upsert(connection, ATTENDANCE, pg_schema, batch.to_batches(batch_rows), _keys(batch) if keys else None)
        )
        connection.close()
        contents.append(sorted(_contents(postgres_url, pg_schema, ATTENDANCE), key=lambda row: row[key]))
    assert contents[0] == contents[1]
    found = {row[key]: row[updated] for row in contents[1]}
    assert len(found) == 5000
    assert {k for k, v in found.items() if v == NEWER} == set(range(50, 5001))
    assert {k for k, v in found.items() if v == dt.datetime(2019, 9, 1)} == set(range(1, 50))
    assert reports[1].rows_sent == reports[0].rows_sent == 4961
    assert reports[1].rows_written == reports[0].rows_written == 4951


def test_two_upserts_given_their_keys_at_once_keep_the_newest(postgres_url: str, pg_schema: str) -> None:
    """Writers of one table wait for each other (the table lock), so keys new to both do not collide."""
    first, second = _rows(ATTENDANCE, range(1, 3001), NEWER), _rows(ATTENDANCE, range(2001, 5001), OLDER)
    errors: list[BaseException] = []

    def load(rows: pa.Table) -> None:
        connection = _loader(postgres_url)
        try:
            upsert(connection, ATTENDANCE, pg_schema, rows.to_batches(500), _keys(rows))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    setup = _loader(postgres_url)
    upsert(setup, ATTENDANCE, pg_schema, _rows(ATTENDANCE, range(1, 2), OLDER).to_batches(), None)
    setup.close()
    threads = [threading.Thread(target=load, args=(rows,)) for rows in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    key = ATTENDANCE.column_names.index(ATTENDANCE.primary_key[0])
    updated = ATTENDANCE.column_names.index(ATTENDANCE.updated_at)
    found = {row[key]: row[updated] for row in _contents(postgres_url, pg_schema, ATTENDANCE)}
    assert len(found) == 5000
    assert {k for k, v in found.items() if v == NEWER} == set(range(1, 3001))  # in whichever order they ran


def test_a_backend_terminated_during_the_copy_of_new_keys(postgres_url: str, pg_schema: str, watcher) -> None:
    before = _loaded(postgres_url, pg_schema)
    terminated = threading.Event()
    batch = _mixed_batch()

    def slow_batches() -> Iterable[pa.RecordBatch]:
        batches = batch.to_batches(1000)
        yield batches[0]
        terminated.wait(60)
        yield from batches[1:]

    connection = _loader(postgres_url)
    thread, errors = _load_in_thread(lambda: upsert(connection, ATTENDANCE, pg_schema, slow_batches(), _keys(batch)))
    _terminate(watcher, f'COPY "{pg_schema}"', waiting_on_lock=False)
    terminated.set()
    thread.join(60)
    _assert_clear(errors, pg_schema, ATTENDANCE, postgres_url, "copying the rows of new keys (COPY)")
    assert _contents(postgres_url, pg_schema, ATTENDANCE) == before
    _retry_completes(postgres_url, pg_schema)


@pytest.mark.parametrize("way", ["upsert of new keys", "upsert through a staging table", "replace"])
def test_a_load_leaves_the_planner_statistics_of_its_rows(postgres_url: str, pg_schema: str, way: str) -> None:
    """Autovacuum analyzes a loaded table seconds after its commit; the aggregates' reference check, planned in
    between, took minutes instead of seconds. The table's autovacuum is off here, so only the load can have
    counted its 700 rows (300 of them over a first load of 400 keys)."""
    table = COMPANY if way == "replace" else ATTENDANCE
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        ensure_table(cursor, table, pg_schema)
        cursor.execute(f'ALTER TABLE "{pg_schema}"."{table.name}" SET (autovacuum_enabled = false)')
    first, then = _rows(table, range(1, 401), dt.datetime(2019, 9, 1)), _rows(table, range(101, 701), NEWER)
    for rows in (first, then):
        if way == "replace":
            replace(connection, table, pg_schema, rows.to_batches())
        else:
            keys = KeySet.of(rows.column(table.primary_key[0])) if way == "upsert of new keys" else None
            upsert(connection, table, pg_schema, rows.to_batches(), keys)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (f'"{pg_schema}"."{table.name}"',))
        estimated = cursor.fetchone()[0]
        cursor.execute(f'SELECT count(*) FROM "{pg_schema}"."{table.name}"')
        counted = cursor.fetchone()[0]
    connection.close()
    assert counted == (600 if way == "replace" else 700)
    assert estimated == counted


KILLED_MID_STATEMENT = """
import sys
from resources.postgres import PostgresResource
url, schema = sys.argv[1:3]
connection = PostgresResource(url=url, schema_name=schema).connect()
with connection.cursor() as cursor:
    cursor.execute(f'LOCK TABLE "{schema}".dim_company IN SHARE ROW EXCLUSIVE MODE')  # as a load locks it
    cursor.execute("SELECT pg_sleep(600) /* the dead run's statement */")
"""


def test_a_run_killed_mid_statement_leaves_no_statement_running_and_no_lock_held(
    postgres_url: str, pg_schema: str
) -> None:
    """A run worker SIGKILLed while its statement runs: the server notices the run is gone and ends the
    statement, so the next run's load gets the table instead of waiting out its lock timeout (30 s here,
    against the dead statement's 10 minutes)."""
    first = _loader(postgres_url)
    replace(first, COMPANY, pg_schema, _rows(COMPANY, range(1, 11), dt.datetime(2019, 9, 1)).to_batches())
    first.close()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_STATEMENT, postgres_url, pg_schema],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        start_new_session=True,
    )
    watcher = psycopg2.connect(postgres_url)
    watcher.autocommit = True

    def dead_statements() -> int:
        with watcher.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%the dead run''s statement%' "
                           "AND pid <> pg_backend_pid()")  # fmt: skip
            return cursor.fetchone()[0]

    try:
        deadline = time.monotonic() + 60
        while dead_statements() == 0 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert dead_statements() == 1, "the child never reached its statement"
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
        living = PostgresResource(url=postgres_url, schema_name=pg_schema, lock_timeout_seconds=30).connect()
        try:
            replace(living, COMPANY, pg_schema, _rows(COMPANY, range(1, 21), dt.datetime(2019, 9, 8)).to_batches())
        finally:
            living.close()
        assert dead_statements() == 0
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        with watcher.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE query LIKE '%the dead run''s statement%' AND pid <> pg_backend_pid()")  # fmt: skip
        watcher.close()
    assert [row[0] for row in _contents(postgres_url, pg_schema, COMPANY)] == list(range(1, 21))
