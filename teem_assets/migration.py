"""Snapshot and incremental migration (DESIGN §3): the current state of a table from its unloads.

The transformations are plain DataFrame functions; `migrate_batches` and `replace_snapshot` read and
write the Athena layout (Snappy Parquet in `created_date=YYYY-MM-DD` folders) and publish each folder whole.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from teem_assets.catalogue import Table
from teem_assets.publish import discard_dir, publish_dir, staging_dir
from teem_assets.spark_types import spark_schema

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


def latest_versions(rows: DataFrame, table: Table) -> DataFrame:
    """One row per primary key: the newest by updated-at; equal updated-at broken by the row's hash, so the
    winner never depends on the order in which batches arrived."""
    data_columns = [F.col(c) for c in table.column_names]
    order = Window.partitionBy(*table.primary_key).orderBy(
        F.col(table.updated_at).desc(), F.xxhash64(*data_columns).desc()
    )
    return rows.withColumn(_RANK, F.row_number().over(order)).where(F.col(_RANK) == 1).drop(_RANK)


@dataclass
class MigrationReport:
    rows_in: int = 0
    rows_rejected: int = 0
    keys_updated: int = 0
    duplicates_dropped: int = 0
    partitions: list[str] = field(default_factory=list)
    rows_in_partitions: int = 0
    table_rows: int = 0


def _write_partitioned(rows: DataFrame, table: Table, target: str) -> None:
    (
        rows.repartition(CREATED_DATE)
        .sortWithinPartitions(*table.primary_key)
        .write.mode("overwrite")
        .partitionBy(CREATED_DATE)
        .parquet(target)
    )


def _write_rejects(rows: DataFrame, quarantine: str) -> None:
    rows.withColumn("reason", F.lit("missing primary key, created-at or updated-at")).write.mode("overwrite").parquet(
        quarantine
    )


def _partition_dirs(root: str) -> list[str]:
    if not os.path.isdir(root):
        return []
    return sorted(name for name in os.listdir(root) if name.startswith(f"{CREATED_DATE}="))


def parquet_rows(folder: str) -> int:
    """Rows of the Parquet files under `folder`, from their footers (no Spark job)."""
    total = 0
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [d for d in subdirectories if not d.startswith((".", "_"))]
        total += sum(
            pq.ParquetFile(os.path.join(directory, f)).metadata.num_rows for f in files if f.endswith(".parquet")
        )
    return total


@dataclass(frozen=True)
class _Incoming:
    rows: int
    rejected: int
    keys: int
    created_dates: list[str]


def _survey(incoming: DataFrame, table: Table) -> _Incoming:
    """Counts and the created dates of a batch, in one Spark job."""
    bad = unmigratable(table)
    key = F.struct(*table.primary_key)
    row = incoming.agg(
        F.count(F.lit(1)),
        F.count(F.when(bad, 1)),
        F.count_distinct(F.when(~bad, key)),
        F.collect_set(F.when(~bad, F.to_date(F.col(table.created_at)))),
    ).first()
    return _Incoming(row[0], row[1], row[2], sorted(str(d) for d in row[3]))


def migrate_batches(
    spark: SparkSession,
    table: Table,
    batches: list[str],
    table_root: str,
    quarantine: str,
    publish: Callable[[str, str], None] = publish_dir,
) -> MigrationReport:
    """Upsert the fact batches at `batches` (Parquet folders) into the current state at `table_root`.

    Only the `created_date` partitions the batches touch are read and rewritten, each published whole.
    """
    incoming = spark.read.schema(table_schema(table)).parquet(*batches)
    survey = _survey(incoming, table)
    report = MigrationReport(rows_in=survey.rows, rows_rejected=survey.rejected, partitions=survey.created_dates)
    if survey.rejected:
        _write_rejects(incoming.where(unmigratable(table)), quarantine)
    existing = set(_partition_dirs(table_root))
    touched = [f"{CREATED_DATE}={d}" for d in survey.created_dates]
    current_paths = [os.path.join(table_root, name) for name in touched if name in existing]
    current_rows = sum(parquet_rows(path) for path in current_paths)
    rows = with_created_date(incoming.where(~unmigratable(table)), table)
    if current_paths:
        current = spark.read.schema(migrated_schema(table)).option("basePath", table_root).parquet(*current_paths)
        rows = current.unionByName(rows)
    if touched:
        staging = staging_dir(os.path.join(table_root, f"batch-{uuid.uuid4().hex[:8]}"))
        try:
            _write_partitioned(latest_versions(rows, table), table, staging)
            for name in touched:
                publish(os.path.join(staging, name), os.path.join(table_root, name))
        finally:
            discard_dir(staging)
    report.rows_in_partitions = sum(parquet_rows(os.path.join(table_root, name)) for name in touched)
    report.keys_updated = current_rows + survey.keys - report.rows_in_partitions
    report.table_rows = parquet_rows(table_root)
    return report


def replace_snapshot(
    spark: SparkSession,
    table: Table,
    snapshot: str,
    table_root: str,
    quarantine: str,
    publish: Callable[[str, str], None] = publish_dir,
) -> MigrationReport:
    """Replace the whole table at `table_root` with the dimension snapshot at `snapshot`, in one swap."""
    incoming = spark.read.schema(table_schema(table)).parquet(snapshot)
    survey = _survey(incoming, table)
    report = MigrationReport(rows_in=survey.rows, rows_rejected=survey.rejected, partitions=survey.created_dates)
    if survey.rejected:
        _write_rejects(incoming.where(unmigratable(table)), quarantine)
    staging = staging_dir(table_root)
    try:
        good = with_created_date(incoming.where(~unmigratable(table)), table)
        _write_partitioned(latest_versions(good, table), table, staging)
        publish(staging, table_root)
    finally:
        discard_dir(staging)
    report.table_rows = report.rows_in_partitions = parquet_rows(table_root)
    report.duplicates_dropped = report.rows_in - report.rows_rejected - report.table_rows
    return report
