"""The fact side of the sample: events booked in spaces, their attendees, and how both change over days.

An event is a pure function of (spec, company, creation day, number), so the batch of day D is rebuilt by
replaying the creation days that can still change on D: rows created on D, plus rows created earlier and
cancelled, checked in or declined on D, each as it stands at the end of D.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from teem_assets.sample.spec import SampleSpec, digest, edw_time, to_local, to_utc
from teem_assets.sample.world import ZONES, Company, Space, companies

# A change can land at most this many days after its event was created (booked <= 47 days ahead, a weekend
# day moved to the Monday after, lasting <= 3 days, cancelled or checked in by its end).
HORIZON_DAYS = 52
# Bookings on working days and fewer at weekends: meeting data's weekly rhythm, which the volume check passes
# by comparing a batch with the same weekday of the weeks before. Which bookings are cancelled, checked in,
# held over several days or booked far ahead, and how many people each invites, follow fixed patterns over the
# event numbers rather than draws: a day's volume then swings by a few percent, as a warehouse at scale does,
# not by the tenth that a few hundred independent draws give (which would trip the 95% check on its own).
BOOKINGS_PER_SPACE_PER_DAY = 4
BOOKINGS_PER_SPACE_PER_WEEKEND_DAY = 2
DURATIONS_MIN = [15, 30, 45, 60, 90, 120, 180]


@dataclass(frozen=True)
class Attendee:
    attendance_pk: int
    calendar_pk: int
    role: str
    status: str
    declined_at: dt.datetime | None  # UTC time the attendee declined after the booking


@dataclass(frozen=True)
class Actuals:
    start: dt.datetime
    end: dt.datetime
    checkins: int
    known_at: dt.datetime  # UTC time the check-in data reached the source


@dataclass(frozen=True)
class Event:
    event_pk: int
    company: Company
    space: Space
    company_pk: int
    space_pk: int
    created_at: dt.datetime  # UTC
    start: dt.datetime  # local wall clock of the space
    end: dt.datetime
    cancelled_at: dt.datetime | None  # UTC
    cancel_method: str | None
    actuals: Actuals | None
    tentative: bool
    private: bool
    series_original_start: dt.datetime | None
    attendees: tuple[Attendee, ...]
    url: str

    @property
    def local_days(self) -> list[dt.date]:
        last = (self.end - dt.timedelta(microseconds=1)).date()
        return [self.start.date() + dt.timedelta(days=i) for i in range((last - self.start.date()).days + 1)]

    def event_change_days(self) -> set[dt.date]:
        days = {self.created_at.date()}
        if self.cancelled_at is not None:
            days.add(self.cancelled_at.date())
        if self.actuals is not None:
            days.add(self.actuals.known_at.date())
        return days

    def attendance_change_days(self) -> set[dt.date]:
        return {self.created_at.date()} | {a.declined_at.date() for a in self.attendees if a.declined_at}


def _days_ahead(event_pk: int) -> int:
    """How long before its day an event is booked: 30% the same day, 60% within two weeks, 10% up to 45 days."""
    share = event_pk * 37 % 100
    return 0 if share < 30 else 1 + event_pk * 7 % 14 if share < 90 else 15 + event_pk * 11 % 31


def _working_day(day: dt.date) -> dt.date:
    """Meetings are held on working days: one that would fall at a weekend is held on the Monday after."""
    return day + dt.timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


def _start_time(rng: random.Random, local_day: dt.date) -> dt.datetime:
    seconds = rng.randint(1, 59) if rng.random() < 0.15 else 0
    return dt.datetime.combine(local_day, dt.time(rng.randint(6, 23), rng.choice([0, 15, 30, 45]), seconds))


def _attendees(
    spec: SampleSpec, rng: random.Random, company: Company, space: Space, event_pk: int, created: dt.datetime
) -> tuple[Attendee, ...]:
    chosen: list[tuple[int, str, str, dt.datetime | None]] = []
    people = rng.sample(company.people, 1 + event_pk % min(7, len(company.people)))
    for position, person in enumerate(people):
        version = next(v for v in person.versions if v.in_force(created))
        role = "organizer" if position == 0 else rng.choice(["required", "required", "optional"])
        status = (
            "accepted"
            if position == 0
            else rng.choice(["accepted", "tentative", "needsAction", "declined", "Declined"])
        )
        declined_at = None
        if status in ("accepted", "needsAction", "tentative") and rng.random() < 0.12:
            declined_at = created + dt.timedelta(hours=rng.randint(1, 24 * 20), microseconds=rng.randrange(10**6))
        chosen.append((version.pk, role, status, declined_at))
        if len(person.versions) > 1 and rng.random() < 0.3:
            other = next(v for v in person.versions if v.pk != version.pk)
            chosen.append((other.pk, "optional", "accepted", None))  # the same person by an older key
    if space.room_calendar_pk is not None:
        chosen.append((space.room_calendar_pk, rng.choice(["room", "Room", "ROOM"]), "accepted", None))
    if rng.random() < 0.1:
        chosen.append(
            (rng.choice(company.resource_calendar_pks), rng.choice(["resource", "RESOURCE"]), "accepted", None)
        )
    others = [s for s in company.spaces if s.room_calendar_pk is not None and s is not space]
    if others and rng.random() < 0.05:
        chosen.append((rng.choice(others).room_calendar_pk, "required", "accepted", None))  # a room invited as a guest
    return tuple(
        Attendee(event_pk * 100 + i, pk, role, status, declined)
        for i, (pk, role, status, declined) in enumerate(chosen)
    )


def _event(spec: SampleSpec, rng: random.Random, company: Company, space: Space, event_pk: int, day: dt.date) -> Event:
    created = dt.datetime.combine(day, dt.time()) + dt.timedelta(
        seconds=rng.randrange(23 * 3600), microseconds=rng.choice([0, rng.randrange(1, 10**6)])
    )
    created_local = to_local(created, space.zone)
    local_day = _working_day(created_local.date() + dt.timedelta(days=_days_ahead(event_pk)))
    shape = event_pk * 53 % 100 / 100
    if shape < 0.04:  # all day, sometimes over several days
        start = dt.datetime.combine(local_day, dt.time())
        end = start + dt.timedelta(days=rng.choice([1, 1, 2]))
    elif shape < 0.07:  # multi-day
        start = dt.datetime.combine(local_day, dt.time(13, 0))
        end = dt.datetime.combine(local_day + dt.timedelta(days=2), dt.time(10, 0))
    else:
        start = _start_time(rng, local_day)
        extra = rng.randint(1, 59) if rng.random() < 0.1 else 0
        end = start + dt.timedelta(minutes=rng.choice(DURATIONS_MIN), seconds=extra)
    start_utc = to_utc(start, space.zone)
    end_utc = to_utc(end, space.zone)
    cancelled_at = cancel_method = None
    if event_pk % 8 == 5:  # one booking in eight is cancelled
        cancel_method = rng.choice(["user", "auto_release", "admin"])
        if cancel_method == "auto_release":  # nobody checked in: released a quarter of an hour into the meeting
            cancelled_at = max(created, start_utc) + dt.timedelta(minutes=15)
        else:  # two hours to three days before the start, by the booking's number (never before the booking)
            ahead = dt.timedelta(hours=2 + 24 * (event_pk // 8 % 4))
            cancelled_at = max(created + dt.timedelta(minutes=1), start_utc - ahead)
    actuals = None
    single_day = len({start.date(), (end - dt.timedelta(microseconds=1)).date()}) == 1
    if space.checkin and single_day and end - start < dt.timedelta(days=1) and event_pk % 4 != 0:
        if cancelled_at is None or cancelled_at > start_utc:
            actual_start = start + dt.timedelta(seconds=rng.randint(-300, 600))
            actual_end = end - dt.timedelta(seconds=rng.randint(-300, 2400))
            if actual_end <= actual_start:
                actual_end = actual_start + dt.timedelta(seconds=rng.randint(30, 600))
            known = max(end_utc, created) + dt.timedelta(minutes=10)
            actuals = Actuals(actual_start, actual_end, rng.randint(1, 3), known)
    version = company.version_at(created)
    space_version = space.version_at(created)
    recurring = rng.random() < 0.1
    url = f"https://calendar.example.com/event?id={event_pk}&view=day" + ("" if spec.plain_text else "|week")
    return Event(
        event_pk=event_pk,
        company=company,
        space=space,
        company_pk=version.pk,
        space_pk=space_version.pk,
        created_at=created,
        start=start,
        end=end,
        cancelled_at=cancelled_at,
        cancel_method=cancel_method,
        actuals=actuals,
        tentative=rng.random() < 0.05,
        private=rng.random() < 0.2,
        series_original_start=start - dt.timedelta(days=7) if recurring else None,
        attendees=_attendees(spec, rng, company, space, event_pk, created),
        url=url,
    )


def events_created(spec: SampleSpec, company: Company, day: dt.date) -> Iterator[Event]:
    """The events booked on `day` (UTC) in the company's spaces."""
    rng = spec.rng("events", company.number, day.isoformat())
    day_number = (day - dt.date(2000, 1, 1)).days
    number = 0
    bookings = BOOKINGS_PER_SPACE_PER_WEEKEND_DAY if day.weekday() >= 5 else BOOKINGS_PER_SPACE_PER_DAY
    for space in company.spaces:
        for _ in range(bookings):
            event_pk = (company.company_id * 100000 + day_number) * 1000 + number
            yield _event(spec, rng, company, space, event_pk, day)
            number += 1


def _hhmm(value: dt.datetime | None) -> int | None:
    return None if value is None else value.hour * 100 + value.minute


def _audit(table: str, created: dt.date, updated: dt.date, key: int, plain: bool) -> tuple[object, ...]:
    filename = f"{table}_{updated:%Y%m%d}.json" if plain else f"s3://teem-raw/{table}/{updated:%Y/%m/%d}/part|0.json"
    return (f"edw_load_{table}", filename, f"{table}_daily", edw_time(created, key), edw_time(updated, key * 7))


def event_rows(spec: SampleSpec, event: Event, as_of: dt.date) -> Iterator[tuple[object, ...]]:
    """The fact_event_by_day rows of `event` as the warehouse holds them at the end of `as_of`."""
    cancelled = event.cancelled_at if event.cancelled_at and event.cancelled_at.date() <= as_of else None
    actuals = event.actuals if event.actuals and event.actuals.known_at.date() <= as_of else None
    changes = [event.created_at] + [t for t in (cancelled, actuals.known_at if actuals else None) if t]
    updated_day = max(t.date() for t in changes)
    status = "cancelled" if cancelled else "tentative" if event.tentative else "confirmed"
    days = event.local_days
    zone = event.space.zone
    ad_hoc = to_utc(event.start, zone) <= event.created_at
    end_early = actuals is not None and actuals.end < event.end - dt.timedelta(minutes=5)
    for index, day in enumerate(days):
        event_by_day_pk = event.event_pk * 10 + index
        yield (
            event.event_pk,
            event.space_pk,
            int(day.strftime("%Y%m%d")),
            event.space.room_calendar_pk,
            event.company_pk,
            _hhmm(event.start),
            _hhmm(event.end),
            _hhmm(actuals.start if actuals else None),
            _hhmm(actuals.end if actuals else None),
            ZONES.index(zone) + 1 if zone else None,
            event_by_day_pk,
            actuals.checkins if actuals else 0,
            event.cancel_method if cancelled else None,
            cancelled,
            event.start,
            event.end,
            actuals.start if actuals else None,
            actuals.end if actuals else None,
            event.series_original_start,
            end_early,
            int((event.end - actuals.end).total_seconds() // 60) if actuals and end_early else None,
            event.url,
            status,
            event.private,
            ad_hoc,
            len(days) > 1,
            index == 0,
            index == len(days) - 1,
            event.created_at,
            max(changes),
            event.company.company_id,
            digest(event_by_day_pk, status, cancelled, actuals),
            digest(event_by_day_pk),
            *_audit("fact_event_by_day", event.created_at.date(), updated_day, event_by_day_pk, spec.plain_text),
        )


def attendance_rows(spec: SampleSpec, event: Event, as_of: dt.date) -> Iterator[tuple[object, ...]]:
    for attendee in event.attendees:
        declined = attendee.declined_at is not None and attendee.declined_at.date() <= as_of
        status = "declined" if declined else attendee.status
        updated_day = attendee.declined_at.date() if declined and attendee.declined_at else event.created_at.date()
        yield (
            event.event_pk,
            attendee.calendar_pk,
            attendee.attendance_pk,
            attendee.role,
            status,
            digest(attendee.attendance_pk, status),
            digest(attendee.attendance_pk),
            *_audit("fact_attendance", event.created_at.date(), updated_day, attendee.attendance_pk, spec.plain_text),
        )


def _batch_events(spec: SampleSpec, day: dt.date, changes_on: Callable[[Event], set[dt.date]]) -> Iterator[Event]:
    first = max(spec.start, day - dt.timedelta(days=HORIZON_DAYS))
    for company in companies(spec):
        created_day = first
        while created_day <= day:
            for event in events_created(spec, company, created_day):
                if day in changes_on(event):
                    yield event
            created_day += dt.timedelta(days=1)


def fact_event_by_day_batch(spec: SampleSpec, day: dt.date) -> Iterator[tuple[object, ...]]:
    for event in _batch_events(spec, day, Event.event_change_days):
        yield from event_rows(spec, event, day)


def fact_attendance_batch(spec: SampleSpec, day: dt.date) -> Iterator[tuple[object, ...]]:
    for event in _batch_events(spec, day, Event.attendance_change_days):
        for row in attendance_rows(spec, event, day):
            if day in (row[-2].date(), row[-1].date()):  # created or updated that day
                yield row
