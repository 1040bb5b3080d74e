"""A small hand-made warehouse for the aggregate rules: the same rows as Spark DataFrames and as
PostgreSQL tables, so that the Spark aggregates and the reference SQL are held to the same hand-written
expectations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import psycopg2
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from teem_assets.aggregates.inputs import Warehouse
from teem_assets.catalogue import TABLES
from teem_assets.migration import migrated_schema
from teem_assets.postgres.load import replace
from teem_assets.redshift_types import arrow_schema

T = dt.datetime
LA, KOLKATA = "America/Los_Angeles", "Asia/Kolkata"
STAMP = T(2019, 8, 1)


def date_pk(day: dt.date) -> int:
    return int(day.strftime("%Y%m%d"))


def _days(first: dt.date, last: dt.date) -> list[dict]:
    count = (last - first).days + 1
    return [{"date_pk": date_pk(first + dt.timedelta(n)), "day_date": first + dt.timedelta(n)} for n in range(count)]


COMPANIES = [
    {"company_pk": 1, "company_id": 100, "company_exclude_all_day_flag": False},
    {"company_pk": 2, "company_id": 200, "company_exclude_all_day_flag": True},
    {"company_pk": 3, "company_id": 300, "company_exclude_all_day_flag": None},
]
SPACES = [
    # space 1000 in Los Angeles, with an old version (space_pk 11) on another building and floor
    {"space_pk": 10, "space_id": 1000, "space_building_id": 1, "space_floor_id": 11, "space_timezone": LA,
     "space_calendar_uuid": "room-1000", "edw_space_is_current_flag": True},
    {"space_pk": 11, "space_id": 1000, "space_building_id": 9, "space_floor_id": 99, "space_timezone": KOLKATA,
     "space_calendar_uuid": "room-1000-old", "edw_space_is_current_flag": False},
    {"space_pk": 20, "space_id": 2000, "space_building_id": 2, "space_floor_id": 21, "space_timezone": KOLKATA,
     "space_calendar_uuid": "room-2000", "edw_space_is_current_flag": True},
    {"space_pk": 30, "space_id": 3000, "space_building_id": 1, "space_floor_id": 12, "space_timezone": None,
     "space_calendar_uuid": None, "edw_space_is_current_flag": True},
    {"space_pk": 40, "space_id": 4000, "space_building_id": 1, "space_floor_id": 11, "space_timezone": LA,
     "space_calendar_uuid": "room-4000", "edw_space_is_current_flag": True},
]  # fmt: skip
CALENDARS = [
    {"calendar_pk": 1, "calendar_uuid": "alice"},
    {"calendar_pk": 2, "calendar_uuid": "bob"},
    {"calendar_pk": 3, "calendar_uuid": "alice"},  # alice's second SCD2 version
    {"calendar_pk": 4, "calendar_uuid": "room-1000"},  # a room's calendar invited as an attendee
    {"calendar_pk": 5, "calendar_uuid": "carol"},
    {"calendar_pk": 6, "calendar_uuid": None},
    {"calendar_pk": 7, "calendar_uuid": "dave"},
    {"calendar_pk": 8, "calendar_uuid": "erin"},
    {"calendar_pk": 9, "calendar_uuid": "frank"},
    {"calendar_pk": 10, "calendar_uuid": "gina"},
    {"calendar_pk": 11, "calendar_uuid": "room-1000-old"},  # the calendar of an old version of a space
]
DATES = _days(dt.date(2019, 9, 1), dt.date(2020, 1, 10)) + _days(dt.date(2020, 3, 1), dt.date(2020, 11, 10))


@dataclass
class World:
    events: list[dict] = field(default_factory=list)
    attendance: list[dict] = field(default_factory=list)

    def event(
        self,
        event_pk: int,
        day: dt.date,
        start: dt.datetime,
        end: dt.datetime,
        *,
        space_pk: int = 10,
        company_pk: int = 1,
        actual: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
        cancelled_at: dt.datetime | None = None,
        booked_at: dt.datetime | None = None,
    ) -> None:
        """One event-day row (its own event_by_day_pk) of event `event_pk` on local day `day`."""
        self.events.append(
            {
                "event_by_day_pk": len(self.events) + 1,
                "event_pk": event_pk,
                "space_pk": space_pk,
                "company_pk": company_pk,
                "local_date_pk": date_pk(day),
                "event_by_day_local_scheduled_start_time": start,
                "event_by_day_local_scheduled_end_time": end,
                "event_by_day_local_actual_start_time": actual[0],
                "event_by_day_local_actual_end_time": actual[1],
                "event_by_day_cancelled_at": cancelled_at,
                "event_by_day_source_created_at": booked_at or T(day.year, day.month, day.day) - dt.timedelta(days=1),
            }
        )

    def attend(self, event_pk: int, calendar_pk: int, status: str | None = "accepted", role: str | None = None) -> None:
        self.attendance.append(
            {
                "attendance_pk": len(self.attendance) + 1,
                "event_pk": event_pk,
                "calendar_pk": calendar_pk,
                "attendance_status": status,
                "attendance_role": role,
            }
        )

    def tables(self) -> dict[str, list[dict]]:
        return {
            "fact_event_by_day": self.events,
            "fact_attendance": self.attendance,
            "dim_space": SPACES,
            "dim_company": COMPANIES,
            "dim_calendar": CALENDARS,
            "dim_date": DATES,
        }

    def _full_rows(self, name: str) -> list[dict]:
        table = TABLES[name]
        audit = {table.created_at: STAMP, table.updated_at: STAMP}
        return [{c: {**audit, **row}.get(c) for c in table.column_names} for row in self.tables()[name]]

    def warehouse(self, spark: SparkSession) -> Warehouse:
        def frame(name: str) -> DataFrame:
            schema = migrated_schema(TABLES[name])
            rows = [(*row.values(), STAMP.date()) for row in self._full_rows(name)]
            return spark.createDataFrame(rows, schema)

        return Warehouse(
            frame("fact_event_by_day"),
            frame("fact_attendance"),
            frame("dim_space"),
            frame("dim_company"),
            frame("dim_calendar"),
            frame("dim_date"),
        )

    def load_postgres(self, url: str, schema: str) -> None:
        for name in self.tables():
            table = TABLES[name]
            rows = pa.Table.from_pylist(self._full_rows(name), schema=arrow_schema(table.typed_columns))
            connection = psycopg2.connect(url)
            replace(connection, table, schema, rows.to_batches())
            connection.close()
