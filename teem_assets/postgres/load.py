"""Loading PostgreSQL: fact batches upserted (last writer wins), dimensions' rows replaced in whole; each in one
transaction, so a failed or killed load leaves the table as it was, and each audited inside it before the commit:
a load its audit rejects is rolled back, and no reader ever sees it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
from psycopg2 import errors, sql

from teem_assets.catalogue import Table
from teem_assets.postgres.copy import copy_batches
from teem_assets.postgres.ddl import ensure_table, qualified
from teem_assets.postgres.held_keys import copy_keys, held_keys
from teem_assets.postgres.keys import KeySet
from teem_assets.redshift_types import Kind, arrow_schema

MODULUS = 999_983  # keeps every product of the fingerprint inside 64 bits
INTEGER_KINDS = {Kind.SMALLINT, Kind.INTEGER, Kind.BIGINT}


@dataclass(frozen=True)
class Fingerprint:
    """Rows, and sums over the primary key and updated-at (epoch microseconds) that any lost, extra or
    stale row changes."""

    rows: int = 0
    key_sum: int = 0
    updated_sum: int = 0
    mixed_sum: int = 0

    def __add__(self, other: Fingerprint) -> Fingerprint:
        return Fingerprint(
            self.rows + other.rows,
            self.key_sum + other.key_sum,
            self.updated_sum + other.updated_sum,
            self.mixed_sum + other.mixed_sum,
        )


def _key_column(table: Table) -> str:
    if len(table.primary_key) != 1 or table.column(table.primary_key[0]).type.kind not in INTEGER_KINDS:
        raise ValueError(f"{table.name}: the fingerprint needs a primary key of one integer column")
    return table.primary_key[0]


def batch_fingerprint(table: Table, batch: pa.RecordBatch) -> Fingerprint:
    keys = batch.column(_key_column(table)).to_numpy(zero_copy_only=False).astype(np.int64)
    updated = batch.column(table.updated_at).cast(pa.int64()).to_numpy(zero_copy_only=False)
    mixed = (keys % MODULUS) * (updated % MODULUS)
    return Fingerprint(
        len(keys), int(keys.sum(dtype=object)), int(updated.sum(dtype=object)), int(mixed.sum(dtype=object))
    )


def fingerprinted(table: Table, batches: Iterable[pa.RecordBatch], into: list[Fingerprint]) -> Iterator[pa.RecordBatch]:
    """Pass the batches through, adding up their fingerprint in `into[0]`."""
    for batch in batches:
        into[0] = into[0] + batch_fingerprint(table, batch)
        yield batch


def _fingerprint_sql(table: Table, source: sql.Composable) -> sql.Composed:
    key = sql.Identifier(_key_column(table))
    updated = sql.SQL("(extract(epoch from {})*1000000)::bigint").format(sql.Identifier(table.updated_at))
    modulus = sql.Literal(MODULUS)
    return sql.SQL(
        "SELECT count(*), coalesce(sum({key}), 0), coalesce(sum({updated}), 0), "
        "coalesce(sum((({key} % {m}) + {m}) % {m} * ((({updated} % {m}) + {m}) % {m})), 0) FROM {source}"
    ).format(key=key, updated=updated, m=modulus, source=source)


def table_fingerprint(cursor, table: Table, schema: str, keys: KeySet | None = None) -> Fingerprint:  # noqa: ANN001
    """The fingerprint of the PostgreSQL table, or of its rows whose key is in `keys`."""
    source: sql.Composable = qualified(schema, table.name)
    if keys is not None:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS teem_check_keys (k bigint) ON COMMIT DROP")
        cursor.execute("TRUNCATE teem_check_keys")
        copy_keys(cursor, "teem_check_keys", keys)
        cursor.execute("ANALYZE pg_temp.teem_check_keys")  # unanalyzed, it is planned as 200 keys: a nested loop
        source = sql.SQL("{} t WHERE {} IN (SELECT k FROM teem_check_keys)").format(
            source, sql.Identifier(_key_column(table))
        )
    cursor.execute(_fingerprint_sql(table, source))
    return Fingerprint(*(int(v) for v in cursor.fetchone()))


def fingerprint_of_rows(table: Table, batches: Iterable[pa.RecordBatch]) -> Fingerprint:
    total = Fingerprint()
    for batch in batches:
        total = total + batch_fingerprint(table, batch)
    return total


def postgres_fingerprint(connection, table: Table, schema: str) -> Fingerprint:  # noqa: ANN001
    """The whole PostgreSQL table's fingerprint (an empty one when the table does not exist yet)."""
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table.name}"',))
        if cursor.fetchone()[0] is None:
            return Fingerprint()
        return table_fingerprint(cursor, table, schema)


class LoadFailed(Exception):
    """A load that failed part way: the transaction is rolled back, the table is as it was before."""


class _Progress:
    step = "connecting"


@contextmanager
def _named_failures(connection, schema: str, table: Table) -> Iterator[_Progress]:  # noqa: ANN001
    """Turn a server error into one naming the server, the table and the step (never the password), and, when
    a lock was not granted within the session's lock_timeout, the sessions that held it."""
    info = connection.info
    server = f"{info.host}:{info.port}/{info.dbname}"
    progress = _Progress()
    try:
        yield progress
    except psycopg2.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, errors.LockNotAvailable):
            reason += f"; held by {_lock_holders(connection, schema, table)}"
        raise LoadFailed(
            f"loading {schema}.{table.name} on PostgreSQL {server} failed while {progress.step}, and the table is "
            f"unchanged (the transaction rolled back): {reason}"
        ) from error


def _lock_holders(connection, schema: str, table: Table) -> str:  # noqa: ANN001
    """The other sessions holding a lock on the table: process, application, user, state and since when."""
    connection.rollback()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.usename, ''), a.state, "
            "a.xact_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.relation = to_regclass(%s) AND l.granted AND a.pid <> pg_backend_pid() ORDER BY 1",
            (f'"{schema}"."{table.name}"',),
        )
        holders = [
            f"process {pid} (application '{app}', user '{user}', {state}, transaction since {since:%Y-%m-%d %H:%M:%S})"
            for pid, app, user, state, since in cursor.fetchall()
        ]
    connection.rollback()
    return ", ".join(holders) or "a session that has since let go"


@dataclass(frozen=True)
class LoadReport:
    rows_sent: int
    rows_written: int  # inserted or updated (a row older than the table's is not written)
    columns_added: list[str]
    committed: bool = True  # False: the audit rejected the load, and it was rolled back


# Reads the table as the load left it, inside the load's transaction: True lets it commit, False rolls it back.
Audit = Callable[[object], bool]


def _analyzed(cursor, target: sql.Composable, progress: _Progress) -> None:  # noqa: ANN001
    """The planner's statistics of the table as the load leaves it, taken in the load's transaction (they commit
    or roll back with it). Autovacuum analyzes a changed table some seconds after the commit; a query planned
    before that (the aggregates' reference check runs right after the loads) had no statistics of the new rows:
    measured on bench/daily.py's day, the hourly reference SQL ran over 60 s instead of 7."""
    progress.step = "analyzing the table"
    cursor.execute(sql.SQL("ANALYZE {}").format(target))


def _audited(connection, cursor, audit: Audit | None, progress: _Progress) -> bool:  # noqa: ANN001
    """Run the audit on the load's transaction; roll it back when it fails. Returns whether it may commit."""
    if audit is None:
        return True
    progress.step = "auditing the load"
    if audit(cursor):
        return True
    connection.rollback()
    return False


def _created_and_locked(cursor, progress: _Progress, table: Table, schema: str) -> list[str]:  # noqa: ANN001
    """The table created (or its new columns added; returned) and locked against other writers for the
    transaction (SHARE ROW EXCLUSIVE: readers go on)."""
    progress.step = "creating the table"
    added = ensure_table(cursor, table, schema)
    progress.step = "locking the table against other writers"
    cursor.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(qualified(schema, table.name)))
    return added


def upsert(
    connection,  # noqa: ANN001
    table: Table,
    schema: str,
    batches: Iterable[pa.RecordBatch],
    keys: KeySet | None = None,
    audit: Audit | None = None,
) -> LoadReport:
    """Insert the rows, replacing a row only by one at least as new, in one transaction.

    With `keys`, every key of the batch's rows, the rows of keys the table does not hold (`held_keys`) go
    straight into it with COPY, and only the others through a staging table and one UPDATE: most of a daily
    batch is new keys. The table is locked against other writers for the transaction (SHARE ROW EXCLUSIVE:
    readers go on), so no key appears between the look-up and the COPY; a row whose key `keys` lacks, held
    by the table, fails the COPY and the load changes nothing. Without `keys`, every row goes through the
    staging table and one INSERT … ON CONFLICT. `audit` reads the result before the commit (None: no audit)."""
    if keys is None:
        return _upsert_staged(connection, table, schema, batches, audit)
    target = qualified(schema, table.name)
    types = arrow_schema(table.typed_columns)
    with _named_failures(connection, schema, table) as progress, connection, connection.cursor() as cursor:
        added = _created_and_locked(cursor, progress, table, schema)
        progress.step = "finding the keys the table holds"
        held = held_keys(cursor, target, table.primary_key[0], keys)
        with tempfile.TemporaryFile(prefix="teem-upsert-") as spill:
            split = _SplitByKey(table.primary_key[0], held, spill)
            progress.step = "copying the rows of new keys (COPY)"
            inserted = copy_batches(cursor, schema, table.name, types, split.new_rows(batches))
            updated = staged = 0
            if split.spilled:
                progress.step = "copying the rows of keys the table holds (COPY)"
                _create_stage(cursor, target)
                staged = copy_batches(cursor, "pg_temp", "teem_stage", types, split.held_rows())
                progress.step = "updating the rows of keys the table holds"
                updated = _update_from_stage(cursor, table, target)
        _analyzed(cursor, target, progress)
        committed = _audited(connection, cursor, audit, progress)
        progress.step = "committing"
    return LoadReport(inserted + staged, inserted + updated, added, committed)


class _SplitByKey:
    """Passes on the rows of new keys and spills the rows of held keys to a local file, read back after."""

    def __init__(self, key: str, held: KeySet, spill: BinaryIO) -> None:
        self._key, self._held, self._spill = key, held, spill
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    @property
    def spilled(self) -> bool:
        return self._writer is not None

    def new_rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            held = self._held.contains(batch.column(self._key))
            older = batch.filter(held)
            if older.num_rows:
                if self._writer is None:
                    self._writer = pa.ipc.new_stream(self._spill, batch.schema)
                self._writer.write_batch(older)
            yield batch.filter(pc.invert(held))

    def held_rows(self) -> Iterator[pa.RecordBatch]:
        if self._writer is None:
            return
        self._writer.close()
        self._spill.seek(0)
        yield from pa.ipc.open_stream(self._spill)


def _create_stage(cursor, target: sql.Composable) -> None:  # noqa: ANN001
    cursor.execute(sql.SQL("CREATE TEMP TABLE teem_stage (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(target))


def _update_from_stage(cursor, table: Table, target: sql.Composable) -> int:  # noqa: ANN001
    """Every staged row replaces the table's row of its key when it is at least as new; returns how many did."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in table.column_names
        if c not in table.primary_key
    )
    key, updated = sql.Identifier(table.primary_key[0]), sql.Identifier(table.updated_at)
    cursor.execute(
        sql.SQL(
            "UPDATE {target} AS t SET {assignments} FROM pg_temp.teem_stage s "
            "WHERE t.{key} = s.{key} AND s.{updated} >= t.{updated}"
        ).format(target=target, assignments=assignments, key=key, updated=updated)
    )
    return cursor.rowcount


def _upsert_staged(
    connection,  # noqa: ANN001
    table: Table,
    schema: str,
    batches: Iterable[pa.RecordBatch],
    audit: Audit | None,
) -> LoadReport:
    """COPY the rows into a temporary table, then insert them, replacing a row only by one at least as new."""
    columns = table.column_names
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    target = qualified(schema, table.name)
    updated = sql.Identifier(table.updated_at)
    with _named_failures(connection, schema, table) as progress, connection, connection.cursor() as cursor:
        progress.step = "creating the table"
        added = ensure_table(cursor, table, schema)
        _create_stage(cursor, target)
        progress.step = "copying the rows (COPY)"
        sent = copy_batches(cursor, "pg_temp", "teem_stage", arrow_schema(table.typed_columns), batches)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in columns
            if c not in table.primary_key
        )
        progress.step = "upserting the rows"
        cursor.execute(
            sql.SQL(
                "INSERT INTO {target} AS t ({names}) SELECT {names} FROM pg_temp.teem_stage "
                "ON CONFLICT ({key}) DO UPDATE SET {assignments} WHERE EXCLUDED.{updated} >= t.{updated}"
            ).format(
                target=target,
                names=names,
                key=sql.SQL(", ").join(map(sql.Identifier, table.primary_key)),
                assignments=assignments,
                updated=updated,
            )
        )
        written = cursor.rowcount
        _analyzed(cursor, target, progress)
        committed = _audited(connection, cursor, audit, progress)
        progress.step = "committing"
    return LoadReport(sent, written, added, committed)


def replace(
    connection,  # noqa: ANN001
    table: Table,
    schema: str,
    batches: Iterable[pa.RecordBatch],
    audit: Audit | None = None,
    keys: KeySet | None = None,
) -> LoadReport:
    """Replace the table's rows (with `keys`, only those of the keys, whatever their age: what a rollback needs,
    where `upsert` would keep a newer row) with `batches`, in one transaction, in the table itself: what a DBA
    added to it (views on it, grants, indexes, comments) stays, and readers see the old rows until the commit.
    Other writers wait (SHARE ROW EXCLUSIVE), readers never do. `audit` reads the result before the commit
    (None: no audit)."""
    target = qualified(schema, table.name)
    with _named_failures(connection, schema, table) as progress, connection, connection.cursor() as cursor:
        added = _created_and_locked(cursor, progress, table, schema)
        if keys is None:
            progress.step = "deleting the old rows"
            cursor.execute(sql.SQL("DELETE FROM {}").format(target))
        else:
            progress.step = "deleting the rows of the keys"
            cursor.execute("CREATE TEMP TABLE teem_replaced_keys (k bigint) ON COMMIT DROP")
            copy_keys(cursor, "teem_replaced_keys", keys)
            key = sql.Identifier(table.primary_key[0])
            cursor.execute(
                sql.SQL("DELETE FROM {} t USING pg_temp.teem_replaced_keys r WHERE t.{} = r.k").format(target, key)
            )
        progress.step = "copying the rows (COPY)"
        sent = copy_batches(cursor, schema, table.name, arrow_schema(table.typed_columns), batches)
        _analyzed(cursor, target, progress)
        committed = _audited(connection, cursor, audit, progress)
        progress.step = "committing"
    return LoadReport(sent, sent, added, committed)
