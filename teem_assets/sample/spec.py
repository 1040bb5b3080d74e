"""What a sample describes: its dates, seed and scale, and the helpers every part of it shares."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class SampleSpec:
    """A sample of `days` daily batches from `start`; `scale` multiplies the companies (and so the rows)."""

    start: dt.date
    days: int = 14
    seed: int = 7
    scale: int = 1
    plain_text: bool = False  # no escapes at all: for comparing with readers that cannot decode them

    def __post_init__(self) -> None:
        if self.days < 1 or self.scale < 1:
            raise ValueError("days and scale must be at least 1")

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def batch_dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def snapshot_time(self) -> dt.datetime:
        """The dimension snapshot is taken at the end of the last batch day."""
        return edw_time(self.end)

    def rng(self, *key: object) -> random.Random:
        return random.Random(":".join(str(k) for k in (self.seed, *key)))


def edw_time(day: dt.date, jitter_us: int = 0) -> dt.datetime:
    """When the warehouse loaded the changes of `day`: the batch's created/updated-at stamp."""
    return dt.datetime.combine(day, dt.time(23, 59, 59)) + dt.timedelta(microseconds=jitter_us % 1_000_000)


def to_utc(local: dt.datetime, zone: str | None) -> dt.datetime:
    """A wall-clock time in `zone` (UTC when None) as a naive UTC time."""
    if zone is None:
        return local
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


def to_local(utc: dt.datetime, zone: str | None) -> dt.datetime:
    if zone is None:
        return utc
    return utc.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def digest(*parts: object) -> str:
    return hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()


def crc(rng: random.Random) -> int:
    return rng.randrange(-(2**63), 2**63)
