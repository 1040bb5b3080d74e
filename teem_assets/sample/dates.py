"""dim_date: one row per calendar day, with the display and calendar arithmetic columns of TEEM's table."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator

from teem_assets.sample.spec import SampleSpec

FIRST_DAY = dt.date(2017, 1, 1)
LAST_DAY = dt.date(2022, 12, 31)
LOADED_AT = dt.datetime(2019, 8, 25, 4, 0, 0, 500000)


def _suffix(day: int) -> str:
    if 11 <= day <= 13:
        return f"{day}th"
    return f"{day}" + {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def us_holidays(year: int) -> dict[dt.date, str]:
    return {
        dt.date(year, 1, 1): "New Year's Day",
        dt.date(year, 7, 4): "Independence Day",
        _nth_weekday(year, 9, 0, 1): "Labor Day",
        _nth_weekday(year, 11, 3, 4): "Thanksgiving Day",
        dt.date(year, 12, 25): "Christmas Day",
    }


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_end(day: dt.date) -> dt.date:
    start = _quarter_start(day)
    month = start.month + 2
    return dt.date(day.year, month, calendar.monthrange(day.year, month)[1])


def date_row(day: dt.date, process_name: str, filename: str) -> tuple[object, ...]:
    holidays = us_holidays(day.year)
    quarter = (day.month - 1) // 3 + 1
    quarter_start = _quarter_start(day)
    first_of_month = day.replace(day=1)
    month_week = (day.day + first_of_month.isoweekday() % 7 - 1) // 7 + 1
    year_start = dt.date(day.year, 1, 1)
    day_of_year = day.timetuple().tm_yday
    return (
        int(day.strftime("%Y%m%d")),
        day,
        dt.datetime.combine(day, dt.time()),
        day.strftime("%m/%d/%Y"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%Y-%m"),
        day.strftime("%B %Y"),
        day.day,
        _suffix(day.day),
        day.strftime("%A"),
        day.isoweekday() % 7 + 1,
        day.isoweekday(),
        (day.day - 1) // 7 + 1,
        (day_of_year - 1) // 7 + 1,
        (day - quarter_start).days + 1,
        day_of_year,
        month_week,
        ((day - quarter_start).days + quarter_start.isoweekday() % 7) // 7 + 1,
        int(day.strftime("%U")) + 1,
        day.month,
        day.strftime("%B"),
        (day.month - 1) % 3 + 1,
        quarter,
        f"Q{quarter}",
        day.year,
        f"CY{day.year}",
        first_of_month,
        first_of_month.replace(day=calendar.monthrange(day.year, day.month)[1]),
        quarter_start,
        _quarter_end(day),
        year_start,
        dt.date(day.year, 12, 31),
        day.isoweekday() <= 5,
        day in holidays,
        holidays.get(day),
        process_name,
        filename,
        "dim_date_weekly",
        LOADED_AT,
        LOADED_AT,
    )


def dim_date_rows(spec: SampleSpec) -> Iterator[tuple[object, ...]]:
    filename = "dim_date.csv" if spec.plain_text else "C:\\etl\\dim_date.csv"
    day = FIRST_DAY
    while day <= LAST_DAY:
        yield date_row(day, "edw_load_dim_date", filename)
        day += dt.timedelta(days=1)
