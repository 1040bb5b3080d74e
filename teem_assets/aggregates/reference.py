"""The reference semantics of both aggregates in PostgreSQL SQL, over the PostgreSQL exports of the
migrated tables: written apart from the Spark code (epoch arithmetic, generate_series, GROUPING SETS where
Spark uses minute indices, hour ranges and a union) so that the two check each other.

Both queries read the dates to compute from pg_temp tables: `teem_agg_dates(day date)` for
agg_hourly_space and `teem_agg_weeks(week_start date)` for week_people_count.
"""

from __future__ import annotations

from psycopg2 import sql

_COMMON = """
WITH current_space AS (
    SELECT DISTINCT ON (space_id) space_id, space_building_id, space_floor_id, space_timezone
    FROM {schema}.dim_space
    WHERE edw_space_is_current_flag
    ORDER BY space_id, edw_space_eff_start_at DESC NULLS LAST, space_pk DESC
),
event_day AS (
    SELECT f.event_pk, c.company_id, cs.space_building_id, cs.space_floor_id, sp.space_id, d.day_date,
           d.day_date::timestamp AS midnight,
           f.event_by_day_local_scheduled_start_time AS s, f.event_by_day_local_scheduled_end_time AS e,
           f.event_by_day_local_actual_start_time AS a_s, f.event_by_day_local_actual_end_time AS a_e,
           f.event_by_day_source_created_at AS booked_at
    FROM {schema}.fact_event_by_day f
    JOIN {schema}.dim_date d ON d.date_pk = f.local_date_pk
    JOIN {schema}.dim_space sp ON sp.space_pk = f.space_pk
    LEFT JOIN current_space cs ON cs.space_id = sp.space_id
    JOIN {schema}.dim_company c ON c.company_pk = f.company_pk
    WHERE f.event_by_day_local_scheduled_end_time > f.event_by_day_local_scheduled_start_time
      AND NOT (f.event_by_day_cancelled_at IS NOT NULL
               AND (f.event_by_day_cancelled_at AT TIME ZONE 'UTC') AT TIME ZONE coalesce(cs.space_timezone, 'UTC')
                   <= f.event_by_day_local_scheduled_start_time)
      AND NOT (coalesce(c.company_exclude_all_day_flag, false)
               AND f.event_by_day_local_scheduled_start_time <= d.day_date::timestamp
               AND f.event_by_day_local_scheduled_end_time >= (d.day_date + 1)::timestamp)
      AND f.event_by_day_local_scheduled_start_time < (d.day_date + 1)::timestamp
      AND f.event_by_day_local_scheduled_end_time > d.day_date::timestamp
),
people AS (
    SELECT DISTINCT a.event_pk, cal.calendar_uuid AS person
    FROM {schema}.fact_attendance a
    JOIN {schema}.dim_calendar cal ON cal.calendar_pk = a.calendar_pk
    WHERE lower(a.attendance_status) IS DISTINCT FROM 'declined'
      AND coalesce(lower(a.attendance_role) NOT IN ('resource', 'room'), true)
      AND cal.calendar_uuid IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {schema}.dim_space r WHERE r.space_calendar_uuid = cal.calendar_uuid)
)
"""

_HOURLY = """,
slot AS (
    SELECT ed.*, h AS hour_num, ed.midnight + make_interval(hours => h) AS slot_start,
           ed.midnight + make_interval(hours => h + 1) AS slot_end
    FROM event_day ed
    -- the hours from the one holding the start (0 when it starts before the day) to the one holding the end
    -- (23 when it ends after it): no other hour can pass the conditions below
    CROSS JOIN LATERAL generate_series(
        CASE WHEN ed.s <= ed.midnight THEN 0 ELSE extract(hour FROM ed.s)::int END,
        CASE WHEN ed.e >= ed.midnight + interval '1 day' THEN 23 ELSE extract(hour FROM ed.e)::int END) AS h
    WHERE ed.day_date IN (SELECT day FROM pg_temp.teem_agg_dates)
      AND ed.s < ed.midnight + make_interval(hours => h + 1)
      AND ed.e > ed.midnight + make_interval(hours => h)
),
pair AS (
    SELECT slot.company_id, slot.space_building_id, slot.space_floor_id, slot.space_id, slot.day_date, slot.hour_num,
           greatest(coalesce(n.people, 0), 1) AS people,
           (extract(epoch FROM date_trunc('minute', least(slot.e, slot.slot_end)))
             - extract(epoch FROM date_trunc('minute', greatest(slot.s, slot.slot_start))))::bigint / 60 AS sched_min,
           CASE WHEN slot.a_s IS NULL OR slot.a_e IS NULL THEN 0
                ELSE (extract(epoch FROM date_trunc('minute', least(slot.a_e, slot.slot_end)))
                       - extract(epoch FROM date_trunc('minute', greatest(slot.a_s, slot.slot_start))))::bigint / 60
                END AS actual_min,
           slot.s::date - slot.booked_at::date AS days_to_book
    FROM slot
    LEFT JOIN (SELECT event_pk, count(*) AS people FROM people GROUP BY event_pk) n ON n.event_pk = slot.event_pk
)
SELECT company_id, space_building_id, space_floor_id, space_id, day_date AS date, hour_num,
       hour_num IN (10, 11, 14, 15) AS hour_is_peak,
       count(*) AS sum_scheduled_events, count(*) AS sum_actual_events,
       max(people) AS max_scheduled_people_count, max(people) AS max_actual_people_count,
       CASE WHEN max(people) BETWEEN 1 AND 3 THEN sum(sched_min) ELSE 0 END::bigint
           AS sum_scheduled_duration_minutes_1_3,
       CASE WHEN max(people) BETWEEN 4 AND 5 THEN sum(sched_min) ELSE 0 END::bigint
           AS sum_scheduled_duration_minutes_4_5,
       CASE WHEN max(people) BETWEEN 6 AND 9 THEN sum(sched_min) ELSE 0 END::bigint
           AS sum_scheduled_duration_minutes_6_9,
       CASE WHEN max(people) BETWEEN 10 AND 17 THEN sum(sched_min) ELSE 0 END::bigint
           AS sum_scheduled_duration_minutes_10_17,
       CASE WHEN max(people) >= 18 THEN sum(sched_min) ELSE 0 END::bigint AS sum_scheduled_duration_minutes_18_plus,
       sum(sched_min)::bigint AS sum_scheduled_duration_minutes, sum(actual_min)::bigint AS sum_actual_duration_minutes,
       60 AS sum_available_minutes_to_book,
       sum(days_to_book)::bigint AS sum_days_to_book, max(days_to_book) AS max_days_to_book
FROM pair
GROUP BY company_id, space_building_id, space_floor_id, space_id, day_date, hour_num
"""

_WEEKLY = """,
week_row AS (
    SELECT ed.company_id, ed.space_building_id, ed.space_floor_id, ed.space_id, ed.event_pk, p.person,
           date_trunc('week', ed.day_date::timestamp)::date AS week_start_date
    FROM event_day ed
    LEFT JOIN people p ON p.event_pk = ed.event_pk
    WHERE date_trunc('week', ed.day_date::timestamp)::date IN (SELECT week_start FROM pg_temp.teem_agg_weeks)
)
SELECT company_id, space_building_id, space_floor_id, space_id, week_start_date,
       extract(isoyear FROM week_start_date)::int AS iso_year, extract(week FROM week_start_date)::int AS iso_week_num,
       CASE WHEN grouping(space_id) = 0 THEN 'space' WHEN grouping(space_floor_id) = 0 THEN 'floor'
            WHEN grouping(space_building_id) = 0 THEN 'building' ELSE 'company' END AS aggregation_level,
       count(DISTINCT person) AS people_count, count(DISTINCT event_pk) AS events_count
FROM week_row
GROUP BY GROUPING SETS (
    (company_id, space_building_id, space_floor_id, space_id, week_start_date),
    (company_id, space_building_id, space_floor_id, week_start_date),
    (company_id, space_building_id, week_start_date),
    (company_id, week_start_date)
)
"""

REFERENCE = {"agg_hourly_space": _COMMON + _HOURLY, "week_people_count": _COMMON + _WEEKLY}


def reference_query(aggregate: str, schema: str) -> sql.Composed:
    """The reference SELECT of `aggregate` over the tables in `schema`, columns in the output's order."""
    return sql.SQL(REFERENCE[aggregate]).format(schema=sql.Identifier(schema))
