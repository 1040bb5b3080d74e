"""An aggregate for a scope of days: the Spark functions applied to the eligible rows of those days."""

from __future__ import annotations

import dataclasses
import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from teem_assets.aggregates.hourly import agg_hourly_space
from teem_assets.aggregates.inputs import Warehouse, attendees, eligible, event_days
from teem_assets.aggregates.outputs import AGG_HOURLY_SPACE, Aggregate
from teem_assets.aggregates.scope import Scope
from teem_assets.aggregates.weekly import week_people_count, week_start


def scope_values(aggregate: Aggregate, scope: Scope) -> list[dt.date]:
    """The partition values an aggregate recomputes: days for agg_hourly_space, Mondays for the weeks."""
    return scope.days if aggregate is AGG_HOURLY_SPACE else scope.weeks


def _days_read(aggregate: Aggregate, scope: Scope) -> list[dt.date]:
    if aggregate is AGG_HOURLY_SPACE:
        return scope.days
    return [week + dt.timedelta(days=offset) for week in scope.weeks for offset in range(7)]


def narrowed(warehouse: Warehouse, days: list[dt.date]) -> Warehouse:
    """The warehouse with only the fact rows of `days`: the event-day rows by their local_date_pk (a literal
    filter, so Iceberg skips the files whose bounds miss it) and the attendance of those events."""
    pks = [row[0] for row in warehouse.dates.where(F.col("day_date").isin(days)).select("date_pk").collect()]
    day_pk = F.col("local_date_pk")
    events = warehouse.events.where(day_pk.between(min(pks), max(pks)) & day_pk.isin(pks) if pks else F.lit(False))
    attendance = warehouse.attendance.join(events.select("event_pk").distinct(), "event_pk", "left_semi")
    return dataclasses.replace(warehouse, events=events, attendance=attendance)


def compute(aggregate: Aggregate, warehouse: Warehouse, scope: Scope) -> DataFrame:
    """The aggregate's rows for the scope's days (agg_hourly_space) or weeks (week_people_count)."""
    spark = warehouse.events.sparkSession
    if not scope.all_days:
        warehouse = narrowed(warehouse, _days_read(aggregate, scope))
    values = spark.createDataFrame([(v,) for v in scope_values(aggregate, scope)], "value date")
    rows = eligible(event_days(warehouse))
    if aggregate is AGG_HOURLY_SPACE:
        rows = rows.join(F.broadcast(values), rows["day_date"] == values["value"], "left_semi")
        return agg_hourly_space(rows, attendees(warehouse))
    rows = rows.join(F.broadcast(values), week_start(rows["day_date"]) == values["value"], "left_semi")
    return week_people_count(rows, attendees(warehouse))
