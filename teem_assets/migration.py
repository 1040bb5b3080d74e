"""Snapshot and incremental migration (DESIGN §3): the current state of a table from its unloads, in an
Iceberg table partitioned by `created_date`.

The transformations are plain DataFrame functions. `migrate_batches` upserts fact batches with one MERGE INTO
(the newest updated-at wins, ties broken by the row's hash, so any order of batches converges), or into a table
that holds no row yet with a write that skips MERGE's join and validates the same way;
`replace_snapshot` replaces a dimension in one commit, and refuses a snapshot that is empty or shrank below the
threshold unless the caller accepted that shrink: the guard is the writer's, so it holds whoever calls it. A
commit that loses to another writer's is run again against the new state.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from teem_assets.catalogue import Table
from teem_assets.iceberg import create_table, retry_conflicts
from teem_assets.spark_types import spark_schema
from teem_assets.table_evolution import evolve
from teem_assets.table_state import current_snapshot_id, total_records
from teem_assets.verdicts.snapshots import shrink_verdict

CREATED_DATE = "created_date"
_RANK = "_teem_rank"


def table_schema(table: Table) -> T.StructType:
    return spark_schema(table.typed_columns)


def migrated_schema(table: Table) -> T.StructType:
    return T.StructType([*table_schema(table).fields, T.StructField(CREATED_DATE, T.DateType())])


def unmigratable(table: Table) -> Column:
    """Rows that cannot take part: no primary key, or no created/updated-at to place and order them."""
    needed = [*table.primary_key, table.created_at, table.updated_at]
    return functools.reduce(lambda a, b: a | b, [F.col(c).isNull() for c in needed])


def with_created_date(rows: DataFrame, table: Table) -> DataFrame:
    """The partition column: the date of the created-at wall-clock time (no zone involved)."""
    return rows.withColumn(CREATED_DATE, F.to_date(F.col(table.created_at)))


def row_hash(table: Table) -> Column:
    """What breaks a tie of updated-at: the same for the same values, whichever batch brought them."""
    return F.xxhash64(*[F.col(c) for c in table.column_names])


def latest_versions(rows: DataFrame, table: Table) -> DataFrame:
    """One row per primary key: the newest by updated-at; equal updated-at broken by the row's hash, so the
    winner never depends on the order in which batches arrived."""
    order = Window.partitionBy(*table.primary_key).orderBy(F.col(table.updated_at).desc(), row_hash(table).desc())
    return rows.withColumn(_RANK, F.row_number().over(order)).where(F.col(_RANK) == 1).drop(_RANK)


class SnapshotRefused(Exception):
    """A dimension snapshot the writer will not put in place of its table: empty, or shrunk below the threshold."""


@dataclass(frozen=True)
class ShrinkGuard:
    threshold: float = 0.9  # the share of the current table's rows a snapshot must hold
    accepted: bool = False  # a genuine shrink, accepted explicitly for this write


@dataclass
class MigrationReport:
    rows_in: int = 0
    rows_rejected: int = 0
    keys_updated: int = 0
    duplicates_dropped: int = 0
    partitions: list[str] = field(default_factory=list)
    rows_in_partitions: int = 0
    table_rows: int = 0
    snapshot_id: int | None = None
    rows_before: int | None = None  # a replaced table's rows before (None: it did not exist)
    shrink_accepted: bool = False


def _write_rejects(rows: DataFrame, quarantine: str) -> None:
    reason = F.lit("missing primary key, created-at or updated-at")
    rows.withColumn("reason", reason).write.mode("overwrite").parquet(quarantine)


@dataclass(frozen=True)
class _Incoming:
    rows: int
    rejected: int
    created_dates: list[str]


def _survey(incoming: DataFrame, table: Table) -> _Incoming:
    """Counts and the created dates of a batch."""
    bad = unmigratable(table)
    row = incoming.agg(
        F.count(F.lit(1)),
        F.count(F.when(bad, 1)),
        F.collect_set(F.when(~bad, F.to_date(F.col(table.created_at)))),
    ).first()
    return _Incoming(row[0], row[1], sorted(str(d) for d in row[2]))


def _distinct_keys(incoming: DataFrame, table: Table) -> int:
    """The batch's keys, counted apart: beside `_survey`'s aggregates a distinct count doubles every row for
    Spark's rewrite of it (measured: 4.5 s against 2.5 s for a batch of 2.3 million rows)."""
    return incoming.where(~unmigratable(table)).select(*table.primary_key).distinct().count()


_GLOB_CHARACTERS = re.compile(r"([\\\[\]{}*?])")


def literal_path(path: str) -> str:
    """`path` escaped for the Hadoop glob Spark applies to every path it reads: a part named `x[1]_0000_part_00`
    is that file, not a pattern matching `x1_0000_part_00`."""
    return _GLOB_CHARACTERS.sub(r"\\\1", path)


def _read(spark: SparkSession, table: Table, files: list[str]) -> DataFrame:
    if not files:
        return spark.createDataFrame([], table_schema(table))
    return spark.read.schema(table_schema(table)).parquet(*map(literal_path, files))


def ensure_migrated_table(spark: SparkSession, table: Table, identifier: str) -> None:
    """Create the table, or bring it to the catalogue's columns (`table_evolution`): added, widened, or refused
    before anything changes."""
    create_table(spark, identifier, migrated_schema(table), CREATED_DATE)
    evolve(spark, identifier, migrated_schema(table))


def _quoted(name: str) -> str:
    return f"`{name}`"


def merge_statement(table: Table, identifier: str, source: str) -> str:
    """MERGE INTO the table from `source` (one row per key, with its hash): a key's row is replaced by a newer
    one, or by an equally new one with a larger hash, and moves to the newer one's created date; new keys are
    inserted. A key is matched in whichever `created_date` partition it is (a corrected `created_at` moves its
    row, never copies it): Iceberg first finds the data files that hold the batch's keys (their key columns
    only, files pruned by their key ranges) and rewrites only those."""
    columns = [*table.column_names, CREATED_DATE]
    on = " AND ".join(f"t.{_quoted(k)} = s.{_quoted(k)}" for k in table.primary_key)
    updated = _quoted(table.updated_at)
    target_hash = f"xxhash64({', '.join(f't.{_quoted(c)}' for c in table.column_names)})"
    newer = f"s.{updated} > t.{updated} OR (s.{updated} = t.{updated} AND s.{_HASH} > {target_hash})"
    assignments = ", ".join(f"{_quoted(c)} = s.{_quoted(c)}" for c in columns)
    names = ", ".join(_quoted(c) for c in columns)
    values = ", ".join(f"s.{_quoted(c)}" for c in columns)
    return (
        f"MERGE INTO {identifier} t USING {source} s ON {on} "
        f"WHEN MATCHED AND ({newer}) THEN UPDATE SET {assignments} "
        f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


_HASH = "_teem_row_hash"


def _count_in(spark: SparkSession, identifier: str, created_dates: list[str]) -> int:
    if not created_dates:
        return 0
    return spark.table(identifier).where(F.col(CREATED_DATE).isin(created_dates)).count()


def _insert_into_empty(spark: SparkSession, table: Table, identifier: str, source: str, seen: int | None) -> None:
    """The batch's rows (one per key) into a table that held no row at snapshot `seen` (None: no snapshot), without
    MERGE's join: every key is new. The commit validates, as MERGE's does, that no other writer added rows since
    `seen`; if one did, Iceberg refuses it as a conflict and the caller runs again, then as a MERGE."""
    columns = [*table.column_names, CREATED_DATE]
    writer = spark.table(source).select(*columns).writeTo(identifier).option("isolation-level", "serializable")
    if seen is not None:
        writer = writer.option("validate-from-snapshot-id", str(seen))
    writer.overwrite(F.lit(False))  # replaces nothing; unlike append(), it validates against concurrent writes


def migrate_batches(
    spark: SparkSession,
    table: Table,
    batch_files: list[str],
    identifier: str,
    quarantine: str,
    log: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Upsert the fact batches (their Parquet files) into the Iceberg table `identifier`, in one commit."""
    incoming = _read(spark, table, batch_files)
    survey = _survey(incoming, table)
    report = MigrationReport(rows_in=survey.rows, rows_rejected=survey.rejected, partitions=survey.created_dates)
    if survey.rejected:
        _write_rejects(incoming.where(unmigratable(table)), quarantine)
    ensure_migrated_table(spark, table, identifier)
    source = f"teem_batch_{uuid.uuid4().hex[:12]}"
    rows = latest_versions(with_created_date(incoming.where(~unmigratable(table)), table), table)
    rows.withColumn(_HASH, row_hash(table)).createOrReplaceTempView(source)

    def write() -> tuple[int, bool]:
        seen = current_snapshot_id(spark, identifier)
        before = total_records(spark, identifier) if seen is not None else 0
        if not survey.created_dates:
            return before, False
        if before == 0:
            _insert_into_empty(spark, table, identifier, source, seen)
            return before, True
        spark.sql(merge_statement(table, identifier, source))
        return before, False

    try:
        before, every_key_new = retry_conflicts(write, log=log)
    finally:
        spark.catalog.dropTempView(source)
    report.table_rows = total_records(spark, identifier)
    inserted = report.table_rows - before
    report.keys_updated = 0 if every_key_new else _distinct_keys(incoming, table) - inserted
    report.rows_in_partitions = _count_in(spark, identifier, survey.created_dates)
    return report


def replace_snapshot(
    spark: SparkSession,
    table: Table,
    snapshot_files: list[str],
    identifier: str,
    quarantine: str,
    log: Callable[[str], None] | None = None,
    guard: ShrinkGuard = ShrinkGuard(),
) -> MigrationReport:
    """Replace the whole Iceberg table `identifier` with the dimension snapshot's rows, in one commit; raises
    SnapshotRefused, the table untouched, when the rows it would write are none or fewer than the guard's share
    of the table's, unless the guard accepted that."""
    incoming = _read(spark, table, snapshot_files)
    survey = _survey(incoming, table)
    report = MigrationReport(rows_in=survey.rows, rows_rejected=survey.rejected, partitions=survey.created_dates)
    if survey.rejected:
        _write_rejects(incoming.where(unmigratable(table)), quarantine)
    ensure_migrated_table(spark, table, identifier)
    keys = _distinct_keys(incoming, table)
    good = latest_versions(with_created_date(incoming.where(~unmigratable(table)), table), table)
    columns = [*table.column_names, CREATED_DATE]

    def replace() -> None:
        current = total_records(spark, identifier) if current_snapshot_id(spark, identifier) is not None else None
        verdict = shrink_verdict(keys, current, guard.threshold)
        if not verdict.passed and not guard.accepted:
            raise SnapshotRefused(
                f"{table.name}: the snapshot was not migrated, the table is unchanged: {verdict.describe()} (below "
                f"{guard.threshold:.0%}); if the shrink is genuine, accept it for one run (config accept_shrink)"
            )
        report.rows_before, report.shrink_accepted = current, not verdict.passed
        good.select(*columns).writeTo(identifier).overwrite(F.lit(True))

    retry_conflicts(replace, log=log)
    report.table_rows = report.rows_in_partitions = total_records(spark, identifier)
    report.duplicates_dropped = report.rows_in - report.rows_rejected - report.table_rows
    return report
