"""An aggregate for a scope of days: the Spark functions applied to the eligible rows of those days."""

from __future__ import annotations

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


def compute(aggregate: Aggregate, warehouse: Warehouse, scope: Scope) -> DataFrame:
    """The aggregate's rows for the scope's days (agg_hourly_space) or weeks (week_people_count)."""
    spark = warehouse.events.sparkSession
    values = spark.createDataFrame([(v,) for v in scope_values(aggregate, scope)], "value date")
    rows = eligible(event_days(warehouse))
    if aggregate is AGG_HOURLY_SPACE:
        rows = rows.join(F.broadcast(values), rows["day_date"] == values["value"], "left_semi")
        return agg_hourly_space(rows, attendees(warehouse))
    rows = rows.join(F.broadcast(values), week_start(rows["day_date"]) == values["value"], "left_semi")
    return week_people_count(rows, attendees(warehouse))
