"""The aggregates' output columns, in the order of the predecessor's Redshift output
(handover/reference/agg_hourly_space_redshift.csv), and the column each one is partitioned by."""

from __future__ import annotations

from dataclasses import dataclass

from teem_assets.catalogue import Column, Columns
from teem_assets.redshift_types import parse_type

_KEY = [("company_id", "int"), ("space_building_id", "int"), ("space_floor_id", "int"), ("space_id", "int")]


@dataclass(frozen=True)
class Aggregate(Columns):
    partition_column: str  # one folder per value: date=… or week_start_date=…


def _aggregate(name: str, partition_column: str, domain: str, columns: list[tuple[str, str]]) -> Aggregate:
    return Aggregate(name, tuple(Column(n, parse_type(t)) for n, t in columns), partition_column, domain=domain)


AGG_HOURLY_SPACE = _aggregate(
    "agg_hourly_space",
    "date",
    "bookings",
    [
        *_KEY,
        ("date", "date"),
        ("hour_num", "int"),
        ("hour_is_peak", "boolean"),
        ("sum_scheduled_events", "bigint"),
        ("sum_actual_events", "bigint"),
        ("max_scheduled_people_count", "bigint"),
        ("max_actual_people_count", "bigint"),
        ("sum_scheduled_duration_minutes_1_3", "bigint"),
        ("sum_scheduled_duration_minutes_4_5", "bigint"),
        ("sum_scheduled_duration_minutes_6_9", "bigint"),
        ("sum_scheduled_duration_minutes_10_17", "bigint"),
        ("sum_scheduled_duration_minutes_18_plus", "bigint"),
        ("sum_scheduled_duration_minutes", "bigint"),
        ("sum_actual_duration_minutes", "bigint"),
        ("sum_available_minutes_to_book", "int"),
        ("sum_days_to_book", "bigint"),
        ("max_days_to_book", "int"),
    ],
)

WEEK_PEOPLE_COUNT = _aggregate(
    "week_people_count",
    "week_start_date",
    "attendance",
    [
        *_KEY,
        ("week_start_date", "date"),
        ("iso_year", "int"),
        ("iso_week_num", "int"),
        ("aggregation_level", "varchar(16)"),
        ("people_count", "bigint"),
        ("events_count", "bigint"),
    ],
)

AGGREGATES: dict[str, Aggregate] = {a.name: a for a in (AGG_HOURLY_SPACE, WEEK_PEOPLE_COUNT)}
