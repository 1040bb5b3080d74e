"""Which local days a run of batches must recompute (DESIGN §3): the days of every version of the event
days the batches carry (an update can move a row to another day, and the old day loses it), and the days
of the events whose attendance the batches carry. A new dimension snapshot means every day."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from teem_assets import layout
from teem_assets.aggregates.inputs import Warehouse
from teem_assets.catalogue import DIMENSIONS, TABLES
from teem_assets.migration import table_schema


@dataclass(frozen=True)
class Scope:
    days: list[dt.date]
    weeks: list[dt.date]  # the Monday of each ISO week holding one of the days
    all_days: bool  # the dimensions changed since the last computation: every day there is


def dimensions_token(root: str) -> str:
    """Names every file of the migrated dimensions: each snapshot migration writes new file names."""
    names = []
    for table in DIMENSIONS:
        folder = layout.migrated(root, table.name)
        for directory, subdirectories, files in os.walk(folder):
            subdirectories[:] = [d for d in subdirectories if not d.startswith((".", "_"))]
            names += [os.path.relpath(os.path.join(directory, f), root) for f in files if f.endswith(".parquet")]
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def _all_versions(spark: SparkSession, root: str, table_name: str) -> DataFrame | None:
    """Every converted batch of a fact table (the parquet layer keeps each batch as it came)."""
    folder = os.path.join(root, "parquet", table_name)
    batches = sorted(d for d in os.listdir(folder) if d.startswith("batch_date=")) if os.path.isdir(folder) else []
    if not batches:
        return None
    return spark.read.schema(table_schema(TABLES[table_name])).parquet(*[os.path.join(folder, b) for b in batches])


def _batch(spark: SparkSession, root: str, table_name: str, batches: list[str]) -> DataFrame | None:
    folders = [layout.parquet_batch(root, table_name, b) for b in batches]
    folders = [f for f in folders if os.path.isdir(f)]
    if not folders:
        return None
    return spark.read.schema(table_schema(TABLES[table_name])).parquet(*folders)


def touched_date_pks(spark: SparkSession, root: str, batches: list[str], warehouse: Warehouse) -> DataFrame:
    """local_date_pk of every day the batches touch."""
    found = [warehouse.dates.select(F.col("date_pk").alias("local_date_pk")).limit(0)]
    events, every_event = (
        _batch(spark, root, "fact_event_by_day", batches),
        _all_versions(spark, root, "fact_event_by_day"),
    )
    if events is not None and every_event is not None:
        keys = events.select("event_by_day_pk").distinct()
        found.append(every_event.join(keys, "event_by_day_pk", "left_semi").select("local_date_pk"))
        found.append(warehouse.events.join(keys, "event_by_day_pk", "left_semi").select("local_date_pk"))
    attendance = _batch(spark, root, "fact_attendance", batches)
    every_attendance = _all_versions(spark, root, "fact_attendance")
    if attendance is not None and every_attendance is not None:
        keys = attendance.select("attendance_pk").distinct()
        event_pks = every_attendance.join(keys, "attendance_pk", "left_semi").select("event_pk").distinct()
        found.append(warehouse.events.join(event_pks, "event_pk", "left_semi").select("local_date_pk"))
    union = found[0]
    for frame in found[1:]:
        union = union.unionByName(frame)
    return union.distinct()


def batch_scope(spark: SparkSession, root: str, batches: list[str], warehouse: Warehouse, all_days: bool) -> Scope:
    """The days (and ISO weeks) to recompute for `batches`; every day of the fact table when `all_days`."""
    if all_days:
        date_pks = warehouse.events.select("local_date_pk").distinct()
    else:
        date_pks = touched_date_pks(spark, root, batches, warehouse)
    days = warehouse.dates.join(date_pks.withColumnRenamed("local_date_pk", "date_pk"), "date_pk", "left_semi")
    found = sorted({row[0] for row in days.select("day_date").distinct().collect() if row[0] is not None})
    weeks = sorted({d - dt.timedelta(days=d.weekday()) for d in found})
    return Scope(found, weeks, all_days)
