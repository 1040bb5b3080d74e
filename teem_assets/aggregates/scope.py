"""Which local days an aggregate must recompute (DESIGN §3), from what the fact tables' commits changed since
the aggregate was last computed: Iceberg's changelog of those commits gives every changed row's old and new
version, so no batch and no older part of the tables is read again.

The days are those of every changed event-day row, before and after (an update can move a row to another day,
and the old day loses it), and the days of the events whose attendance changed. A new dimension snapshot, a
first computation, or a history that no longer reaches the last computation (expired snapshots) means every
day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from teem_assets.aggregates.inputs import Warehouse
from teem_assets.catalogue import DIMENSIONS, FACT_ATTENDANCE, FACT_EVENT_BY_DAY
from teem_assets.iceberg import changelog
from teem_assets.table_state import is_current_ancestor

# Fact table name -> Iceberg snapshot id (None: the table had no snapshot).
FactSnapshots = Mapping[str, int | None]


@dataclass(frozen=True)
class Scope:
    days: list[dt.date]
    weeks: list[dt.date]  # the Monday of each ISO week holding one of the days
    all_days: bool  # every day there is (see `reason`)
    reason: str


def dimensions_token(read_at: Mapping[str, int | None]) -> str:
    """Names the snapshot of every migrated dimension the aggregates read (`read_at`, by table name): each
    snapshot migration commits a new one."""
    snapshots = [f"{t.name}={read_at[t.name]}" for t in DIMENSIONS]
    return hashlib.sha256("\n".join(snapshots).encode()).hexdigest()


def _changes(spark: SparkSession, identifier: str, since: int | None, until: int | None, column: str) -> set[int]:
    """The distinct values of `column` in the old and new versions of the rows changed after `since` up to
    `until`."""
    if until is None or since == until:
        return set()
    view = changelog(spark, identifier, since, until, f"teem_changes_{uuid.uuid4().hex[:12]}")
    try:
        rows = spark.table(view).select(column).where(F.col(column).isNotNull()).distinct().collect()
    finally:
        spark.catalog.dropTempView(view)
    return {row[0] for row in rows}


def _days_of_events(events: DataFrame, event_pks: set[int]) -> set[int]:
    """local_date_pk of every current day-row of the events."""
    if not event_pks:
        return set()
    spark = events.sparkSession
    wanted = spark.createDataFrame([(pk,) for pk in sorted(event_pks)], "event_pk bigint")
    # The range lets Iceberg skip files by their event_pk bounds before the join.
    bounded = events.where(F.col("event_pk").between(min(event_pks), max(event_pks)))
    rows = bounded.join(F.broadcast(wanted), "event_pk", "left_semi").select("local_date_pk").distinct().collect()
    return {row[0] for row in rows if row[0] is not None}


def changed_date_pks(
    spark: SparkSession,
    warehouse: Warehouse,
    identifiers: Mapping[str, str],
    since: FactSnapshots,
    until: FactSnapshots,
) -> set[int]:
    """local_date_pk of every day the fact tables' commits after `since` up to `until` touched."""
    events, attendance = FACT_EVENT_BY_DAY.name, FACT_ATTENDANCE.name
    moved = _changes(spark, identifiers[events], since.get(events), until.get(events), "local_date_pk")
    attended = _changes(spark, identifiers[attendance], since.get(attendance), until.get(attendance), "event_pk")
    return moved | _days_of_events(warehouse.events, attended)


def _history_reaches(spark: SparkSession, identifiers: Mapping[str, str], since: FactSnapshots) -> bool:
    return all(
        snapshot is None or is_current_ancestor(spark, identifiers[name], snapshot) for name, snapshot in since.items()
    )


def _scope_of(warehouse: Warehouse, date_pks: DataFrame, all_days: bool, reason: str) -> Scope:
    days = warehouse.dates.join(date_pks.withColumnRenamed("local_date_pk", "date_pk"), "date_pk", "left_semi")
    found = sorted({row[0] for row in days.select("day_date").distinct().collect() if row[0] is not None})
    weeks = sorted({d - dt.timedelta(days=d.weekday()) for d in found})
    return Scope(found, weeks, all_days, reason)


def every_day(warehouse: Warehouse, reason: str) -> Scope:
    return _scope_of(warehouse, warehouse.events.select("local_date_pk").distinct(), True, reason)


def scope_since(
    spark: SparkSession,
    warehouse: Warehouse,
    identifiers: Mapping[str, str],
    since: FactSnapshots | None,
    until: FactSnapshots,
) -> Scope:
    """The days (and ISO weeks) the fact tables' commits after `since` (the snapshots the aggregate was last
    computed from) up to `until` (those the warehouse is read at) changed. `since` None: every day."""
    if since is None:
        return every_day(warehouse, "no earlier computation from these fact tables")
    if not _history_reaches(spark, identifiers, since):
        return every_day(warehouse, "the fact tables' history no longer reaches the last computation")
    pks = sorted(changed_date_pks(spark, warehouse, identifiers, since, until))
    frame = spark.createDataFrame([(pk,) for pk in pks], "local_date_pk bigint")
    first = {name: since.get(name) for name in until}
    return _scope_of(warehouse, frame, False, f"rows changed after {first} up to {dict(until)}")
