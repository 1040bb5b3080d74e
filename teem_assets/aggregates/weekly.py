"""week_people_count: distinct people and events per ISO week of the local day, at four roll-up levels."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from teem_assets.aggregates.inputs import KEY, conform, on_own_day
from teem_assets.aggregates.outputs import WEEK_PEOPLE_COUNT

# Each level keeps a prefix of the key; the rest is NULL. Distinct counts do not add up, so each level is
# counted from the rows, never from the level below.
LEVELS = {"space": 4, "floor": 3, "building": 2, "company": 1}


def week_start(day: F.Column) -> F.Column:
    """The Monday of the day's ISO week (dayofweek: Sunday = 1 … Saturday = 7)."""
    return F.date_sub(day, (F.dayofweek(day) + 5) % 7)


def week_people_count(rows: DataFrame, people: DataFrame) -> DataFrame:
    """`rows`: eligible event days (inputs.eligible); `people`: (event_pk, person) pairs (inputs.attendees)."""
    monday = week_start(F.col("day_date"))
    attended = (
        on_own_day(rows).select(*KEY, "event_pk", monday.alias("week_start_date")).join(people, "event_pk", "left")
    )
    levels = []
    for level, kept in LEVELS.items():
        counted = attended.groupBy(*KEY[:kept], "week_start_date").agg(
            F.count_distinct("person").alias("people_count"), F.count_distinct("event_pk").alias("events_count")
        )
        levels.append(
            counted.select(
                *KEY[:kept],
                *[F.lit(None).alias(name) for name in KEY[kept:]],
                "week_start_date",
                F.year(F.date_add(F.col("week_start_date"), 3)).alias("iso_year"),  # the year of its Thursday
                F.weekofyear("week_start_date").alias("iso_week_num"),
                F.lit(level).alias("aggregation_level"),
                "people_count",
                "events_count",
            )
        )
    union = levels[0]
    for level in levels[1:]:
        union = union.unionByName(level)
    return conform(union, WEEK_PEOPLE_COUNT)
