"""Every rule of spec/AGGREGATES.md on hand-made rows, with the expected values written out by hand, held
against the Spark aggregates and against the PostgreSQL reference SQL alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg2
import pytest
from aggregate_world import World
from pyspark.sql import SparkSession

from teem_assets.aggregates.hourly import agg_hourly_space
from teem_assets.aggregates.inputs import attendees, eligible, event_days
from teem_assets.aggregates.outputs import AGG_HOURLY_SPACE, WEEK_PEOPLE_COUNT
from teem_assets.aggregates.weekly import week_people_count
from teem_assets.postgres.aggregates import reference_rows

T = dt.datetime
D = dt.date


def hourly_world() -> World:
    w = World()
    # an event ending exactly on the hour makes no row for that hour
    w.event(1, D(2019, 9, 2), T(2019, 9, 2, 9, 30), T(2019, 9, 2, 11, 0))
    # seconds past the hour: an hour-11 row of 0 minutes; seconds never round
    w.event(
        2,
        D(2019, 9, 3),
        T(2019, 9, 3, 10, 15, 45),
        T(2019, 9, 3, 11, 0, 20),
        actual=(T(2019, 9, 3, 10, 20, 30), T(2019, 9, 3, 11, 0, 10)),
    )
    # two seconds across the hour: one minute boundary in hour 13, none in hour 14
    w.event(3, D(2019, 9, 4), T(2019, 9, 4, 13, 59, 59), T(2019, 9, 4, 14, 0, 1))
    # across midnight: one row per local day, each counts only its own day's slots
    for day in (D(2019, 9, 5), D(2019, 9, 6)):
        w.event(4, day, T(2019, 9, 5, 23, 30), T(2019, 9, 6, 0, 30), booked_at=T(2019, 9, 1, 12))
    # cancellations in Los Angeles (UTC-7 in September): at the start, after it, before it
    w.event(5, D(2019, 9, 9), T(2019, 9, 9, 10), T(2019, 9, 9, 11), cancelled_at=T(2019, 9, 9, 17, 0))
    w.event(6, D(2019, 9, 9), T(2019, 9, 9, 14), T(2019, 9, 9, 15), cancelled_at=T(2019, 9, 9, 21, 30))
    w.event(7, D(2019, 9, 9), T(2019, 9, 9, 12), T(2019, 9, 9, 13), cancelled_at=T(2019, 9, 9, 18, 30))
    # in Kolkata (UTC+5:30): 05:00 UTC is 10:30 there, after the start; 09:00 UTC is 14:30, before
    w.event(8, D(2019, 9, 10), T(2019, 9, 10, 10), T(2019, 9, 10, 11), space_pk=20, cancelled_at=T(2019, 9, 10, 5))
    w.event(9, D(2019, 9, 10), T(2019, 9, 10, 15), T(2019, 9, 10, 16), space_pk=20, cancelled_at=T(2019, 9, 10, 9))
    # a space without a zone compares in UTC
    w.event(10, D(2019, 9, 11), T(2019, 9, 11, 10), T(2019, 9, 11, 11), space_pk=30, cancelled_at=T(2019, 9, 11, 10))
    w.event(
        27, D(2019, 9, 11), T(2019, 9, 11, 12), T(2019, 9, 11, 13), space_pk=30, cancelled_at=T(2019, 9, 11, 12, 0, 1)
    )
    # DST starts in Los Angeles: 01:30-03:30 on the wall clock is three slots, 120 minutes;
    # 11:30 UTC is 04:30 PDT (after the 04:00 start; it would be 03:30 in PST)
    w.event(11, D(2020, 3, 8), T(2020, 3, 8, 1, 30), T(2020, 3, 8, 3, 30))
    w.event(12, D(2020, 3, 8), T(2020, 3, 8, 4), T(2020, 3, 8, 5), cancelled_at=T(2020, 3, 8, 11, 30))
    # DST ends: 00:30-02:30 is three slots, 120 minutes; 16:30 UTC is 08:30 PST (09:30 in PDT)
    w.event(13, D(2020, 11, 1), T(2020, 11, 1, 0, 30), T(2020, 11, 1, 2, 30))
    w.event(14, D(2020, 11, 1), T(2020, 11, 1, 9), T(2020, 11, 1, 10), cancelled_at=T(2020, 11, 1, 16, 30))
    # a multi-day event of a company that keeps all-day rows
    for day in (D(2019, 9, 12), D(2019, 9, 13), D(2019, 9, 14)):
        w.event(15, day, T(2019, 9, 12, 9), T(2019, 9, 14, 17), booked_at=T(2019, 9, 10, 8))
    # the same for a company that excludes them: its whole middle day goes
    for day in (D(2019, 9, 16), D(2019, 9, 17), D(2019, 9, 18)):
        w.event(16, day, T(2019, 9, 16, 9), T(2019, 9, 18, 17), space_pk=20, company_pk=2, booked_at=T(2019, 9, 10, 8))
    # all-day rows, midnight to midnight: dropped with the flag, kept without it or when it is NULL
    w.event(17, D(2019, 9, 19), T(2019, 9, 19), T(2019, 9, 20), space_pk=20, company_pk=2)
    w.event(18, D(2019, 9, 19), T(2019, 9, 19), T(2019, 9, 20))
    w.event(28, D(2019, 9, 19), T(2019, 9, 19), T(2019, 9, 20), space_pk=40, company_pk=3)
    # people: alice twice (two SCD2 calendars), bob declined, the room's calendar (current and old
    # version), carol a resource, erin a room, a NULL uuid; dave with no status nor role counts
    w.event(19, D(2019, 9, 20), T(2019, 9, 20, 10), T(2019, 9, 20, 11))
    for calendar, status, role in [
        (1, "accepted", "required"),
        (3, "tentative", None),
        (2, "DECLINED", None),
        (4, "accepted", "required"),
        (11, "accepted", None),
        (5, "accepted", "Resource"),
        (8, "accepted", "ROOM"),
        (6, "accepted", None),
        (7, None, None),
    ]:
        w.attend(19, calendar, status, role)
    # five people put the hour's minutes in the 4-5 bucket, with an event without attendance beside it
    w.event(20, D(2019, 9, 20), T(2019, 9, 20, 14), T(2019, 9, 20, 14, 45))
    for calendar in (1, 7, 8, 9, 10):
        w.attend(20, calendar)
    w.event(29, D(2019, 9, 20), T(2019, 9, 20, 14, 30), T(2019, 9, 20, 15))
    # actual minutes on the scheduled slots, not clamped: negative in hour 11; 0 when a bound is NULL;
    # booked the day after the local start: -1 days to book
    w.event(
        21,
        D(2019, 9, 23),
        T(2019, 9, 23, 10),
        T(2019, 9, 23, 12),
        actual=(T(2019, 9, 23, 10, 5), T(2019, 9, 23, 10, 40)),
    )
    w.event(22, D(2019, 9, 23), T(2019, 9, 23, 14), T(2019, 9, 23, 15), booked_at=T(2019, 9, 24, 1))
    w.event(30, D(2019, 9, 23), T(2019, 9, 23, 16), T(2019, 9, 23, 17), actual=(T(2019, 9, 23, 16), None))
    # an old version of space 1000: its key and zone come from the current version (LA), so a
    # cancellation at 20:00 UTC (13:00 in LA, 01:30 next day in the old version's Kolkata) drops it
    w.event(23, D(2019, 9, 24), T(2019, 9, 24, 10), T(2019, 9, 24, 11), space_pk=11)
    w.event(31, D(2019, 9, 24), T(2019, 9, 24, 14), T(2019, 9, 24, 15), space_pk=11, cancelled_at=T(2019, 9, 24, 20))
    # no positive scheduled interval
    w.event(24, D(2019, 9, 25), T(2019, 9, 25, 10), T(2019, 9, 25, 10))
    w.event(32, D(2019, 9, 25), T(2019, 9, 25, 12), T(2019, 9, 25, 11))
    return w  # fmt: skip


LA_1000 = (100, 1, 11, 1000)
KOLKATA_2000 = (100, 2, 21, 2000)
NO_ZONE_3000 = (100, 1, 12, 3000)


def hourly_expected() -> dict[tuple, tuple]:
    """(key..., date, hour) -> (events, max people, scheduled minutes, actual minutes, sum days, max days)."""
    e: dict[tuple, tuple] = {}

    def put(key: tuple, day: D, hour: int, events: int, people: int, sched: int, actual: int, days: tuple) -> None:
        e[(*key, day, hour)] = (events, people, sched, actual, *days)

    put(LA_1000, D(2019, 9, 2), 9, 1, 1, 30, 0, (1, 1))
    put(LA_1000, D(2019, 9, 2), 10, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2019, 9, 3), 10, 1, 1, 45, 40, (1, 1))
    put(LA_1000, D(2019, 9, 3), 11, 1, 1, 0, 0, (1, 1))
    put(LA_1000, D(2019, 9, 4), 13, 1, 1, 1, 0, (1, 1))
    put(LA_1000, D(2019, 9, 4), 14, 1, 1, 0, 0, (1, 1))
    put(LA_1000, D(2019, 9, 5), 23, 1, 1, 30, 0, (4, 4))
    put(LA_1000, D(2019, 9, 6), 0, 1, 1, 30, 0, (4, 4))
    put(LA_1000, D(2019, 9, 9), 14, 1, 1, 60, 0, (1, 1))
    put(KOLKATA_2000, D(2019, 9, 10), 10, 1, 1, 60, 0, (1, 1))
    put(NO_ZONE_3000, D(2019, 9, 11), 12, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2020, 3, 8), 1, 1, 1, 30, 0, (1, 1))
    put(LA_1000, D(2020, 3, 8), 2, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2020, 3, 8), 3, 1, 1, 30, 0, (1, 1))
    put(LA_1000, D(2020, 3, 8), 4, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2020, 11, 1), 0, 1, 1, 30, 0, (1, 1))
    put(LA_1000, D(2020, 11, 1), 1, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2020, 11, 1), 2, 1, 1, 30, 0, (1, 1))
    for hour in range(9, 24):
        put(LA_1000, D(2019, 9, 12), hour, 1, 1, 60, 0, (2, 2))
        put((200, 2, 21, 2000), D(2019, 9, 16), hour, 1, 1, 60, 0, (6, 6))
    for hour in range(24):
        put(LA_1000, D(2019, 9, 13), hour, 1, 1, 60, 0, (2, 2))
        put(LA_1000, D(2019, 9, 19), hour, 1, 1, 60, 0, (1, 1))
        put((300, 1, 11, 4000), D(2019, 9, 19), hour, 1, 1, 60, 0, (1, 1))
    for hour in range(17):
        put(LA_1000, D(2019, 9, 14), hour, 1, 1, 60, 0, (2, 2))
        put((200, 2, 21, 2000), D(2019, 9, 18), hour, 1, 1, 60, 0, (6, 6))
    put(LA_1000, D(2019, 9, 20), 10, 1, 2, 60, 0, (1, 1))
    put(LA_1000, D(2019, 9, 20), 14, 2, 5, 75, 0, (2, 1))
    put(LA_1000, D(2019, 9, 23), 10, 1, 1, 60, 35, (1, 1))
    put(LA_1000, D(2019, 9, 23), 11, 1, 1, 60, -20, (1, 1))
    put(LA_1000, D(2019, 9, 23), 14, 1, 1, 60, 0, (-1, -1))
    put(LA_1000, D(2019, 9, 23), 16, 1, 1, 60, 0, (1, 1))
    put(LA_1000, D(2019, 9, 24), 10, 1, 1, 60, 0, (1, 1))
    return e


def as_output_rows(expected: dict[tuple, tuple]) -> set[tuple]:
    """The expectations as whole agg_hourly_space rows. Only two hours have more than 3 people: the
    hour of 20 September at 14:00 (5: the 4-5 bucket); every other hour's minutes are in the 1-3 bucket."""
    rows = set()
    for (company, building, floor, space, day, hour), (events, people, sched, actual, days, top) in expected.items():
        buckets = (0, sched, 0, 0, 0) if people == 5 else (sched, 0, 0, 0, 0)
        rows.add((company, building, floor, space, day, hour, hour in (10, 11, 14, 15), events, events, people, people,
                  *buckets, sched, actual, 60, days, top))  # fmt: skip
    return rows


def week_world() -> World:
    w = World()
    # Sunday 29 December 2019 (2019-W52) into Monday 30 December (2020-W01): counted in both weeks
    for day in (D(2019, 12, 29), D(2019, 12, 30)):
        w.event(25, day, T(2019, 12, 29, 22), T(2019, 12, 30, 2))
    for calendar in (1, 3, 2):  # alice, alice again (SCD2), bob
        w.attend(25, calendar)
    w.event(26, D(2019, 12, 30), T(2019, 12, 30, 10), T(2019, 12, 30, 11), space_pk=30)
    w.attend(26, 2)
    w.attend(26, 7)
    w.event(33, D(2019, 12, 31), T(2019, 12, 31, 10), T(2019, 12, 31, 11), space_pk=40, company_pk=3)
    w.attend(33, 1)
    w.event(34, D(2020, 1, 1), T(2020, 1, 1, 10), T(2020, 1, 1, 11))  # no attendance: an event, no people
    w.event(35, D(2020, 1, 2), T(2020, 1, 2, 10), T(2020, 1, 2, 11), cancelled_at=T(2020, 1, 2, 17))
    w.attend(35, 10)
    w.event(36, D(2020, 1, 3), T(2020, 1, 3, 10), T(2020, 1, 3, 11), space_pk=20)
    w.attend(36, 5, role="resource")
    w.attend(36, 8, status="declined")
    # a row whose interval misses its own local day makes no hourly slot, so it is not counted
    w.event(37, D(2020, 1, 4), T(2020, 1, 5, 10), T(2020, 1, 5, 11))
    w.attend(37, 9)
    return w


def week_expected() -> set[tuple]:
    w52, w01 = (D(2019, 12, 23), 2019, 52), (D(2019, 12, 30), 2020, 1)
    return {
        (100, 1, 11, 1000, *w52, "space", 2, 1),
        (100, 1, 11, None, *w52, "floor", 2, 1),
        (100, 1, None, None, *w52, "building", 2, 1),
        (100, None, None, None, *w52, "company", 2, 1),
        (100, 1, 11, 1000, *w01, "space", 2, 2),
        (100, 1, 12, 3000, *w01, "space", 2, 1),
        (300, 1, 11, 4000, *w01, "space", 1, 1),
        (100, 2, 21, 2000, *w01, "space", 0, 1),
        (100, 1, 11, None, *w01, "floor", 2, 2),
        (100, 1, 12, None, *w01, "floor", 2, 1),
        (300, 1, 11, None, *w01, "floor", 1, 1),
        (100, 2, 21, None, *w01, "floor", 0, 1),
        (100, 1, None, None, *w01, "building", 3, 3),
        (300, 1, None, None, *w01, "building", 1, 1),
        (100, 2, None, None, *w01, "building", 0, 1),
        (100, None, None, None, *w01, "company", 3, 4),
        (300, None, None, None, *w01, "company", 1, 1),
    }


def spark_hourly(spark: SparkSession, world: World) -> set[tuple]:
    warehouse = world.warehouse(spark)
    return {tuple(r) for r in agg_hourly_space(eligible(event_days(warehouse)), attendees(warehouse)).collect()}


def spark_weekly(spark: SparkSession, world: World) -> set[tuple]:
    warehouse = world.warehouse(spark)
    return {tuple(r) for r in week_people_count(eligible(event_days(warehouse)), attendees(warehouse)).collect()}


def _report(got: set[tuple], expected: set[tuple]) -> str:
    return f"missing {sorted(expected - got, key=str)[:5]}, unexpected {sorted(got - expected, key=str)[:5]}"


def test_agg_hourly_space_follows_every_rule_in_spark(spark: SparkSession) -> None:
    got, expected = spark_hourly(spark, hourly_world()), as_output_rows(hourly_expected())
    assert got == expected, _report(got, expected)


def test_week_people_count_follows_every_rule_in_spark(spark: SparkSession) -> None:
    got, expected = spark_weekly(spark, week_world()), week_expected()
    assert got == expected, _report(got, expected)


def test_the_columns_are_the_redshift_outputs() -> None:
    with open("../shared/handover/reference/agg_hourly_space_redshift.csv") as reference:
        header = reference.readline().strip().replace('"', "").split(",")
    assert AGG_HOURLY_SPACE.column_names == header
    assert WEEK_PEOPLE_COUNT.column_names[4:] == [
        "week_start_date", "iso_year", "iso_week_num", "aggregation_level", "people_count", "events_count"
    ]  # fmt: skip


@pytest.fixture
def pg(postgres_url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(postgres_url)
    yield connection
    connection.close()


def test_the_postgres_reference_follows_every_rule(
    postgres_url: str, pg_schema: str, pg: psycopg2.extensions.connection
) -> None:
    hourly, weekly = hourly_world(), week_world()
    hourly.load_postgres(postgres_url, pg_schema)
    days = sorted({key[4] for key in hourly_expected()} | {D(2019, 9, 17), D(2019, 9, 25), D(2019, 9, 10)})
    got = {tuple(r) for r in reference_rows(pg, AGG_HOURLY_SPACE, pg_schema, days)}
    expected = as_output_rows(hourly_expected())
    assert got == expected, _report(got, expected)
    weekly.load_postgres(postgres_url, pg_schema)
    got = {tuple(r) for r in reference_rows(pg, WEEK_PEOPLE_COUNT, pg_schema, [D(2019, 12, 23), D(2019, 12, 30)])}
    assert got == week_expected(), _report(got, week_expected())


class CrowdWorld(World):
    """The hand-made world with 20 more people (calendars 101..120)."""

    def tables(self) -> dict[str, list[dict]]:
        crowd = [{"calendar_pk": 100 + n, "calendar_uuid": f"person-{n}"} for n in range(1, 21)]
        return {**super().tables(), "dim_calendar": [*super().tables()["dim_calendar"], *crowd]}


# people at one event -> (1_3, 4_5, 6_9, 10_17, 18_plus) minutes of its half hour, written out from the spec's
# bucket bounds: each edge of each bucket once
BUCKETS_BY_PEOPLE = {
    3: (30, 0, 0, 0, 0),
    4: (0, 30, 0, 0, 0),
    5: (0, 30, 0, 0, 0),
    6: (0, 0, 30, 0, 0),
    9: (0, 0, 30, 0, 0),
    10: (0, 0, 0, 30, 0),
    17: (0, 0, 0, 30, 0),
    18: (0, 0, 0, 0, 30),
}


def bucket_world() -> World:
    w = CrowdWorld()
    for n, people in enumerate(BUCKETS_BY_PEOPLE):
        day = D(2019, 10, 1) + dt.timedelta(days=n)
        w.event(40 + n, day, T(day.year, day.month, day.day, 10), T(day.year, day.month, day.day, 10, 30))
        for person in range(1, people + 1):
            w.attend(40 + n, 100 + person)
    return w


def bucket_expected() -> set[tuple]:
    rows = set()
    for n, (people, buckets) in enumerate(BUCKETS_BY_PEOPLE.items()):
        day = D(2019, 10, 1) + dt.timedelta(days=n)
        # one event-slot, max people both ways, 30 scheduled and 0 actual minutes, 60 available, booked a day ahead
        rows.add((*LA_1000, day, 10, True, 1, 1, people, people, *buckets, 30, 0, 60, 1, 1))
    return rows


def test_every_people_bucket_at_both_of_its_edges(
    spark: SparkSession, postgres_url: str, pg_schema: str, pg: psycopg2.extensions.connection
) -> None:
    world = bucket_world()
    got = spark_hourly(spark, world)
    assert got == bucket_expected(), _report(got, bucket_expected())
    world.load_postgres(postgres_url, pg_schema)
    days = [D(2019, 10, 1) + dt.timedelta(days=n) for n in range(len(BUCKETS_BY_PEOPLE))]
    got = {tuple(r) for r in reference_rows(pg, AGG_HOURLY_SPACE, pg_schema, days)}
    assert got == bucket_expected(), _report(got, bucket_expected())
