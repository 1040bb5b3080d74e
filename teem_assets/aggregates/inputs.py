"""What both aggregates start from (spec/AGGREGATES.md, "Inputs and joins"): the eligible event-day rows
with their space, company and local day, and the people of each event.

Every timestamp is a TIMESTAMP_NTZ wall-clock value; the one zone conversion is the cancellation's, from
UTC to the space's zone, written out with `convert_timezone`. Nothing here depends on the session zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from teem_assets.catalogue import TABLES, Columns
from teem_assets.iceberg import table_exists
from teem_assets.migration import migrated_schema
from teem_assets.spark_types import spark_type

START = "event_by_day_local_scheduled_start_time"
END = "event_by_day_local_scheduled_end_time"
ACTUAL_START = "event_by_day_local_actual_start_time"
ACTUAL_END = "event_by_day_local_actual_end_time"
CANCELLED_AT = "event_by_day_cancelled_at"
SOURCE_CREATED_AT = "event_by_day_source_created_at"
KEY = ["company_id", "space_building_id", "space_floor_id", "space_id"]


@dataclass(frozen=True)
class Warehouse:
    """The migrated tables the aggregates read."""

    events: DataFrame  # fact_event_by_day
    attendance: DataFrame  # fact_attendance
    spaces: DataFrame  # dim_space
    companies: DataFrame  # dim_company
    calendars: DataFrame  # dim_calendar
    dates: DataFrame  # dim_date


class MissingInput(Exception):
    """A migrated table the aggregates read has never been materialized."""


def read_warehouse(
    spark: SparkSession, identifiers: Mapping[str, str], snapshots: Mapping[str, int | None] | None = None
) -> Warehouse:
    """The migrated tables, by name -> Iceberg identifier, each read at its snapshot in `snapshots` (by name)
    or else its current one."""

    def read(name: str) -> DataFrame:
        identifier = identifiers[name]
        if not table_exists(spark, identifier):
            hint = "snapshot_job" if TABLES[name].is_dimension else "batch_job"
            raise MissingInput(f"the Iceberg table {identifier} does not exist: materialize migrated/{name} ({hint})")
        columns = [field.name for field in migrated_schema(TABLES[name]).fields]
        snapshot = (snapshots or {}).get(name)
        source = f"{identifier} VERSION AS OF {int(snapshot)}" if snapshot is not None else identifier
        return spark.sql(f"SELECT * FROM {source}").select(*columns)

    return Warehouse(
        read("fact_event_by_day"),
        read("fact_attendance"),
        read("dim_space"),
        read("dim_company"),
        read("dim_calendar"),
        read("dim_date"),
    )


def day_start(day: Column) -> Column:
    """Midnight of a date as a wall-clock TIMESTAMP_NTZ."""
    return day.cast("timestamp_ntz")


def own_day_bounds() -> tuple[Column, Column]:
    """The row's local day as [midnight, next midnight), wall-clock TIMESTAMP_NTZ."""
    return day_start(F.col("day_date")), day_start(F.date_add(F.col("day_date"), 1))


def minute_index(ts: Column) -> Column:
    """Minutes since 1970-01-01 00:00 on the wall clock: Redshift's DATEDIFF(minute, a, b) is
    minute_index(b) - minute_index(a), the minute boundaries crossed; seconds never round."""
    return F.unix_date(F.to_date(ts)) * 1440 + F.hour(ts) * 60 + F.minute(ts)


def _current_spaces(spaces: DataFrame) -> DataFrame:
    """Building, floor and zone of each space_id from its current version (the newest one, should the
    dimension ever hold two current versions)."""
    newest = Window.partitionBy("space_id").orderBy(
        F.col("edw_space_eff_start_at").desc_nulls_last(), F.desc("space_pk")
    )
    return (
        spaces.where(F.col("edw_space_is_current_flag"))
        .withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .select("space_id", "space_building_id", "space_floor_id", "space_timezone")
    )


def event_days(warehouse: Warehouse) -> DataFrame:
    """Every fact row with its local day, space key, zone and company flag (before the eligibility rules)."""
    facts = warehouse.events.select(
        "event_pk", "space_pk", "company_pk", "local_date_pk", START, END, ACTUAL_START, ACTUAL_END, CANCELLED_AT,
        SOURCE_CREATED_AT,
    )  # fmt: skip
    return (
        facts.join(warehouse.dates.select(F.col("date_pk").alias("local_date_pk"), "day_date"), "local_date_pk")
        .join(warehouse.spaces.select("space_pk", "space_id"), "space_pk")
        .join(_current_spaces(warehouse.spaces), "space_id", "left")
        .join(warehouse.companies.select("company_pk", "company_id", "company_exclude_all_day_flag"), "company_pk")
    )


def eligible(rows: DataFrame) -> DataFrame:
    """The rules of eligibility: a positive scheduled interval; not cancelled at or before its local start;
    not a whole-day row of a company that excludes those."""
    start, end, cancelled = F.col(START), F.col(END), F.col(CANCELLED_AT)
    zone = F.coalesce(F.col("space_timezone"), F.lit("UTC"))
    cancelled_local = F.convert_timezone(F.lit("UTC"), zone, cancelled)
    cancelled_in_time = cancelled.isNotNull() & (cancelled_local <= start)
    midnight, next_midnight = own_day_bounds()
    whole_day = (start <= midnight) & (end >= next_midnight)
    excluded_all_day = F.coalesce(F.col("company_exclude_all_day_flag"), F.lit(False)) & whole_day
    return rows.where((end > start) & ~cancelled_in_time & ~excluded_all_day)


def on_own_day(rows: DataFrame) -> DataFrame:
    """Rows whose scheduled interval overlaps their own local day: those that make an hourly slot."""
    midnight, next_midnight = own_day_bounds()
    return rows.where((F.col(START) < next_midnight) & (F.col(END) > midnight))


def attendees(warehouse: Warehouse) -> DataFrame:
    """(event_pk, person): distinct calendar uuids of an event's attendance, without declined attendees,
    resources, rooms, and calendars that belong to a space."""
    rooms = warehouse.spaces.where(F.col("space_calendar_uuid").isNotNull()).select(
        F.col("space_calendar_uuid").alias("person")
    )
    declined = F.lower(F.col("attendance_status")).eqNullSafe("declined")
    not_a_person = F.lower(F.col("attendance_role")).isin("resource", "room")
    return (
        warehouse.attendance.where(~declined & ~F.coalesce(not_a_person, F.lit(False)))
        .join(warehouse.calendars.select("calendar_pk", F.col("calendar_uuid").alias("person")), "calendar_pk")
        .where(F.col("person").isNotNull())
        .join(rooms.distinct(), "person", "left_anti")
        .select("event_pk", "person")
        .distinct()
    )


def conform(frame: DataFrame, output: Columns) -> DataFrame:
    """The frame's columns in the output's order and types."""
    return frame.select(*[F.col(name).cast(spark_type(rtype)).alias(name) for name, rtype in output.typed_columns])
