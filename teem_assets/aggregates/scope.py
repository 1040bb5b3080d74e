"""Which local days a run of batches must recompute (DESIGN §3): the days of every version of the event
days the batches carry (an update can move a row to another day, and the old day loses it), and the days
of the events whose attendance the batches carry. A new dimension snapshot means every day."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from teem_assets.aggregates.inputs import Warehouse
from teem_assets.catalogue import DIMENSIONS, FACT_ATTENDANCE, FACT_EVENT_BY_DAY, Table
from teem_assets.iceberg import current_snapshot_id
from teem_assets.migration import table_schema

# Batch files by fact table name: Parquet URIs of the converted batches.
BatchFiles = Mapping[str, list[str]]


@dataclass(frozen=True)
class Scope:
    days: list[dt.date]
    weeks: list[dt.date]  # the Monday of each ISO week holding one of the days
    all_days: bool  # the dimensions changed since the last computation: every day there is


def dimensions_token(spark: SparkSession, identifiers: Mapping[str, str]) -> str:
    """Names the current snapshot of every migrated dimension: each snapshot migration commits a new one."""
    snapshots = [f"{t.name}={current_snapshot_id(spark, identifiers[t.name])}" for t in DIMENSIONS]
    return hashlib.sha256("\n".join(snapshots).encode()).hexdigest()


def _batches(spark: SparkSession, table: Table, files: list[str]) -> DataFrame | None:
    """Converted batches as they came (the Parquet layer keeps every version)."""
    return spark.read.schema(table_schema(table)).parquet(*files) if files else None


def touched_date_pks(
    spark: SparkSession, carried: BatchFiles, every_version: BatchFiles, warehouse: Warehouse
) -> DataFrame:
    """local_date_pk of every day the `carried` batches touch."""
    found = [warehouse.dates.select(F.col("date_pk").alias("local_date_pk")).limit(0)]
    for table in (FACT_EVENT_BY_DAY, FACT_ATTENDANCE):
        batch = _batches(spark, table, carried.get(table.name, []))
        if batch is None:
            continue
        history = _batches(spark, table, every_version.get(table.name, [])) or batch
        keys = batch.select(*table.primary_key).distinct()
        versions = history.unionByName(batch).join(keys, list(table.primary_key), "left_semi")
        if table is FACT_EVENT_BY_DAY:  # the day of every version, and of the current row
            found.append(versions.select("local_date_pk"))
            found.append(warehouse.events.join(keys, list(table.primary_key), "left_semi").select("local_date_pk"))
        else:  # the days of the events any version of the attendance belongs to
            event_pks = versions.select("event_pk").distinct()
            found.append(warehouse.events.join(event_pks, "event_pk", "left_semi").select("local_date_pk"))
    union = found[0]
    for frame in found[1:]:
        union = union.unionByName(frame)
    return union.distinct()


def batch_scope(
    spark: SparkSession, carried: BatchFiles, every_version: BatchFiles, warehouse: Warehouse, all_days: bool
) -> Scope:
    """The days (and ISO weeks) to recompute for the `carried` batches; every day of the fact table when
    `all_days`."""
    if all_days:
        date_pks = warehouse.events.select("local_date_pk").distinct()
    else:
        date_pks = touched_date_pks(spark, carried, every_version, warehouse)
    days = warehouse.dates.join(date_pks.withColumnRenamed("local_date_pk", "date_pk"), "date_pk", "left_semi")
    found = sorted({row[0] for row in days.select("day_date").distinct().collect() if row[0] is not None})
    weeks = sorted({d - dt.timedelta(days=d.weekday()) for d in found})
    return Scope(found, weeks, all_days)
