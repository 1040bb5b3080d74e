"""agg_hourly_space: one row per space, local day and hour slot that an eligible event-day row touches."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from teem_assets.aggregates.inputs import (
    ACTUAL_END,
    ACTUAL_START,
    END,
    KEY,
    SOURCE_CREATED_AT,
    START,
    conform,
    minute_index,
    on_own_day,
    own_day_bounds,
)
from teem_assets.aggregates.outputs import AGG_HOURLY_SPACE

PEAK_HOURS = (10, 11, 14, 15)
BUCKETS = {"1_3": (1, 3), "4_5": (4, 5), "6_9": (6, 9), "10_17": (10, 17), "18_plus": (18, None)}


def _minutes(start: Column, end: Column, slot_start: Column) -> Column:
    """DATEDIFF(minute, max(start, slot start), min(end, slot end)) in minute indices (monotonic, so the
    index of the max is the max of the indices)."""
    return F.least(minute_index(end), slot_start + 60) - F.greatest(minute_index(start), slot_start)


def slots(rows: DataFrame) -> DataFrame:
    """(row, hour slot) pairs: slot h of the row's local day is [day h:00, day h+1:00), touched when
    start < slot end and end > slot start; each slot is 60 wall-clock minutes, on DST days too."""
    start, end = F.col(START), F.col(END)
    midnight, next_midnight = own_day_bounds()
    first = F.when(start < midnight, 0).otherwise(F.hour(start))
    last = F.when(end >= next_midnight, 23).otherwise(F.hour(end))
    slot_start = midnight + F.make_dt_interval(F.lit(0), F.col("hour_num"), F.lit(0), F.lit(0))
    slot_end = midnight + F.make_dt_interval(F.lit(0), F.col("hour_num") + 1, F.lit(0), F.lit(0))
    return (
        on_own_day(rows)
        .withColumn("hour_num", F.explode(F.sequence(first, last)))
        .where((start < slot_end) & (end > slot_start))
        .withColumn("_slot_minute", minute_index(midnight) + F.col("hour_num") * 60)
    )


def agg_hourly_space(rows: DataFrame, people: DataFrame) -> DataFrame:
    """`rows`: eligible event days (inputs.eligible); `people`: (event_pk, person) pairs (inputs.attendees)."""
    head_count = people.groupBy("event_pk").agg(F.count("person").alias("_people"))
    actual_known = F.col(ACTUAL_START).isNotNull() & F.col(ACTUAL_END).isNotNull()
    pairs = (
        slots(rows)
        .join(head_count, "event_pk", "left")
        .select(
            *KEY,
            F.col("day_date").alias("date"),
            "hour_num",
            F.greatest(F.coalesce(F.col("_people"), F.lit(0)), F.lit(1)).alias("people"),
            _minutes(F.col(START), F.col(END), F.col("_slot_minute")).alias("sched_min"),
            F.when(actual_known, _minutes(F.col(ACTUAL_START), F.col(ACTUAL_END), F.col("_slot_minute")))
            .otherwise(0)
            .alias("actual_min"),
            F.datediff(F.to_date(F.col(START)), F.to_date(F.col(SOURCE_CREATED_AT))).alias("days_to_book"),
        )
    )
    hours = pairs.groupBy(*KEY, "date", "hour_num").agg(
        F.count(F.lit(1)).alias("_pairs"),
        F.max("people").alias("_max_people"),
        F.sum("sched_min").alias("_sched"),
        F.sum("actual_min").alias("_actual"),
        F.sum("days_to_book").alias("sum_days_to_book"),
        F.max("days_to_book").alias("max_days_to_book"),
    )
    max_people, sched = F.col("_max_people"), F.col("_sched")

    def bucket(low: int, high: int | None) -> Column:
        inside = (max_people >= low) if high is None else max_people.between(low, high)
        return F.when(inside, sched).otherwise(F.lit(0))

    result = hours.select(
        *KEY,
        "date",
        "hour_num",
        F.col("hour_num").isin(*PEAK_HOURS).alias("hour_is_peak"),
        F.col("_pairs").alias("sum_scheduled_events"),
        F.col("_pairs").alias("sum_actual_events"),
        max_people.alias("max_scheduled_people_count"),
        max_people.alias("max_actual_people_count"),
        *[bucket(low, high).alias(f"sum_scheduled_duration_minutes_{name}") for name, (low, high) in BUCKETS.items()],
        sched.alias("sum_scheduled_duration_minutes"),
        F.col("_actual").alias("sum_actual_duration_minutes"),
        F.lit(60).alias("sum_available_minutes_to_book"),
        "sum_days_to_book",
        "max_days_to_book",
    )
    return conform(result, AGG_HOURLY_SPACE)
