"""The dimension side of the sample: companies, their buildings and spaces, people and room calendars.

Everything is a pure function of the spec and the company number, so a company can be rebuilt at any time
instead of being kept in memory; SCD2 versions change inside the sample's window so facts of different
days point at different versions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from teem_assets.sample.spec import SampleSpec, crc, digest

HISTORY_START = dt.datetime(2018, 3, 1, 9, 30, 15, 250000)
DIM_LOADED_AT = dt.datetime(2019, 8, 25, 4, 0, 0, 120000)
OPEN_END = dt.datetime(9999, 12, 31, 0, 0, 0)
# Spaces west of UTC with DST, east of UTC, with a half-hour offset, and one more west.
ZONES = ["America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin", "America/New_York"]

COMPANY_NAMES = [
    'Acme | "Quoted" Holdings',
    "O'Brien & Sons\\Partners",
    "Zürich Ventures 🚀",
    "Globex\nMultiline Inc",
    "Initech\r\nWindows Co",
    "",
]
SPACE_NAMES = [
    "Room A|1",
    'Board "Big" Room',
    "Line\nBreak Room",
    "東京 Huddle",
    "Café ☕ Corner",
    "Back\\slash Booth",
    "Plain Room",
    "Carriage\rReturn Room",
    "",
]
PEOPLE = ["Zoë O'Connor", "José | Pipe", 'Ann "Quote" Lee', "Li Wei 李伟", "Back\\Slash", "Carol\nNewline", "Bob"]


@dataclass(frozen=True)
class Version:
    """One SCD2 version: which key it has and when it was in force."""

    pk: int
    number: int
    eff_start: dt.datetime
    eff_end: dt.datetime

    @property
    def is_current(self) -> bool:
        return self.eff_end == OPEN_END

    def in_force(self, at: dt.datetime) -> bool:
        return self.eff_start <= at < self.eff_end


def _versions(pk_base: int, change_at: dt.datetime | None) -> list[Version]:
    if change_at is None:
        return [Version(pk_base + 1, 1, HISTORY_START, OPEN_END)]
    return [Version(pk_base + 1, 1, HISTORY_START, change_at), Version(pk_base + 2, 2, change_at, OPEN_END)]


def _text(spec: SampleSpec, fancy: str, plain: str) -> str:
    return plain if spec.plain_text else fancy


@dataclass(frozen=True)
class Space:
    space_id: int
    index: int
    building: int
    floor: int
    zone: str | None
    calendar_uuid: str | None
    room_calendar_pk: int | None
    checkin: bool
    capacity: int
    versions: tuple[Version, ...]

    def version_at(self, at: dt.datetime) -> Version:
        return next(v for v in self.versions if v.in_force(at))


@dataclass(frozen=True)
class Person:
    uuid: str
    index: int
    versions: tuple[Version, ...]


@dataclass(frozen=True)
class Company:
    number: int
    company_id: int
    versions: tuple[Version, ...]
    spaces: tuple[Space, ...]
    people: tuple[Person, ...]
    resource_calendar_pks: tuple[int, ...]

    def version_at(self, at: dt.datetime) -> Version:
        return next(v for v in self.versions if v.in_force(at))


def company_count(spec: SampleSpec) -> int:
    return 3 * spec.scale


def _change_time(spec: SampleSpec, day_offset: int, hour: int) -> dt.datetime:
    return dt.datetime.combine(spec.start + dt.timedelta(days=day_offset), dt.time(hour, 17, 42, 5))


@lru_cache(maxsize=64)
def build_company(spec: SampleSpec, number: int) -> Company:
    rng = spec.rng("company", number)
    company_id = 100 + number
    versions = _versions(company_id * 10, _change_time(spec, 3, 10) if number % 2 == 0 else None)
    spaces = []
    index = 0
    for building in range(2):
        zone: str | None = ZONES[(number + building) % len(ZONES)]
        for floor in range(2):
            for slot in range(3):
                space_id = company_id * 1000 + index
                if number % 3 == 2 and building == 1 and floor == 1 and slot == 2:
                    zone = None  # a space whose zone was never set: UTC
                attached = rng.random() < 0.8
                calendar = str(uuid.UUID(int=rng.getrandbits(128))) if attached else None
                change = _change_time(spec, 5, 8) if slot == 0 and floor == 1 else None
                spaces.append(
                    Space(
                        space_id=space_id,
                        index=index,
                        building=building,
                        floor=floor,
                        zone=zone,
                        calendar_uuid=calendar,
                        room_calendar_pk=company_id * 100000 + 50000 + index if attached else None,
                        checkin=rng.random() < 0.7,
                        capacity=rng.choice([2, 4, 6, 8, 12, 20]),
                        versions=tuple(_versions(space_id * 10, change)),
                    )
                )
                index += 1
    people = tuple(
        Person(
            uuid=str(uuid.UUID(int=rng.getrandbits(128))),
            index=p,
            versions=tuple(_versions(company_id * 100000 + p * 10, _change_time(spec, 2, 14) if p % 4 == 0 else None)),
        )
        for p in range(10)
    )
    resources = (company_id * 100000 + 60000, company_id * 100000 + 60001)
    return Company(number, company_id, tuple(versions), tuple(spaces), people, resources)


def companies(spec: SampleSpec) -> Iterator[Company]:
    for number in range(company_count(spec)):
        yield build_company(spec, number)


def _audit(spec: SampleSpec, table: str, version: Version) -> tuple[object, ...]:
    loaded = max(DIM_LOADED_AT, version.eff_start)
    updated = max(loaded, version.eff_end) if not version.is_current else loaded
    filename = _text(spec, f"\\\\etl01\\teem\\{table}_{loaded:%Y%m%d}.csv", f"{table}_{loaded:%Y%m%d}.csv")
    return (f"edw_load_{table}", filename, f"{table}_weekly", loaded, updated)


def _scd2(version: Version) -> tuple[object, ...]:
    return (version.eff_start, version.eff_end, version.is_current)


def _snapshot_versions(spec: SampleSpec, versions: tuple[Version, ...]) -> list[Version]:
    """The versions a snapshot taken at the end of the sample holds (its view of later changes is unknown)."""
    at = spec.snapshot_time
    shown = []
    for v in versions:
        if v.eff_start > at:
            continue
        if v.eff_end > at and v.eff_end != OPEN_END:
            v = Version(v.pk, v.number, v.eff_start, OPEN_END)
        shown.append(v)
    return shown


def dim_company_rows(spec: SampleSpec) -> Iterator[tuple[object, ...]]:
    for company in companies(spec):
        rng = spec.rng("dim_company", company.number)
        base = COMPANY_NAMES[company.number % len(COMPANY_NAMES)]
        for version in _snapshot_versions(spec, company.versions):
            name = _text(spec, base if version.number == 1 else f"{base} (renamed)", f"Company {company.company_id}")
            exclude_all_day = company.number % 3 == 1 or (company.number % 3 == 0 and version.number == 2)
            hours = rng.choice([("08:00", "18:00"), ("07:30", "17:30"), ("09:00", "17:00")])
            yield (
                version.pk,
                company.company_id,
                name if company.number % 7 != 6 else None,
                True,
                rng.choice([60, 70, 80]),
                company.number % 2 == 1,
                exclude_all_day,
                hours[0],
                hours[1],
                rng.choice([8.0, 9.5, 10.25, 10.0]),
                HISTORY_START - dt.timedelta(days=30, microseconds=rng.randrange(1, 10**6)),
                version.eff_start,
                None if version.is_current else version.eff_end,
                crc(rng),
                crc(rng),
                *_scd2(version),
                *_audit(spec, "dim_company", version),
            )


def dim_space_rows(spec: SampleSpec) -> Iterator[tuple[object, ...]]:
    for company in companies(spec):
        rng = spec.rng("dim_space", company.number)
        for space in company.spaces:
            versions = _snapshot_versions(spec, space.versions)
            base = SPACE_NAMES[(company.number + space.index) % len(SPACE_NAMES)]
            current_name = _text(spec, f"{base} v{len(versions)}", f"Room {space.space_id} v{len(versions)}")
            for version in versions:
                building_id = company.company_id * 10 + space.building
                floor_id = building_id * 10 + space.floor
                floor_name = [f"Floor {space.floor + 1}", "", None][(space.building * 2 + space.floor) % 3]
                yield (
                    version.pk,
                    space.space_id,
                    rng.choice(["conference_room", "phone booth", "huddle_room"]),
                    _text(spec, f"{base} v{version.number}", f"Room {space.space_id} v{version.number}"),
                    current_name,
                    floor_id,
                    floor_name,
                    building_id,
                    _text(spec, ["Main Tower", "Annex «Nord»"][space.building], f"Building {building_id}"),
                    company.company_id,
                    _text(spec, "Campus | One", "Campus One"),
                    space.calendar_uuid is not None,
                    space.calendar_uuid,
                    space.capacity + (2 if version.number == 2 else 0),
                    space.zone,
                    space.checkin,
                    HISTORY_START,
                    version.eff_start,
                    None,
                    company.company_id,
                    crc(rng),
                    crc(rng),
                    *_scd2(version),
                    *_audit(spec, "dim_space", version),
                )


def _calendar_row(
    spec: SampleSpec,
    company: Company,
    version: Version,
    calendar_uuid: str,
    kind: str,
    name: str,
    email: str,
    zone: str | None,
) -> tuple[object, ...]:
    rng = spec.rng("dim_calendar", version.pk)
    return (
        version.pk,
        calendar_uuid,
        f"{kind}:{calendar_uuid[:8]}",
        kind,
        "example.com",
        email,
        company.company_id,
        name,
        zone,
        rng.choice(["google", "o365", "exchange"]),
        rng.choice(["v3", "2019.1", None]),
        HISTORY_START,
        version.eff_start,
        True,
        "teem.calendars",
        company.company_id,
        digest(version.pk, "update"),
        digest(version.pk, "insert"),
        *_scd2(version),
        *_audit(spec, "dim_calendar", version),
    )


def dim_calendar_rows(spec: SampleSpec) -> Iterator[tuple[object, ...]]:
    for company in companies(spec):
        zone = company.spaces[0].zone
        for person in company.people:
            base = PEOPLE[person.index % len(PEOPLE)]
            name = _text(spec, base, f"Person {person.index}")
            for version in _snapshot_versions(spec, person.versions):
                email = f"p{person.index}.v{version.number}@c{company.company_id}.example.com"
                yield _calendar_row(spec, company, version, person.uuid, "person", name, email, zone)
        for space in company.spaces:
            if space.calendar_uuid is not None and space.room_calendar_pk is not None:
                version = Version(space.room_calendar_pk, 1, HISTORY_START, OPEN_END)
                email = f"room{space.index}@c{company.company_id}.example.com"
                yield _calendar_row(
                    spec, company, version, space.calendar_uuid, "room", f"Room {space.space_id}", email, space.zone
                )
        for pk in company.resource_calendar_pks:
            version = Version(pk, 1, HISTORY_START, OPEN_END)
            resource_uuid = str(uuid.UUID(int=spec.rng("resource", pk).getrandbits(128)))
            yield _calendar_row(
                spec, company, version, resource_uuid, "resource", "Projector", f"r{pk}@example.com", zone
            )
