"""What the batch unload sensor requests on each tick, and the small cursor it keeps (DESIGN §7).

A tick lists only the dates that can still be new: from `WINDOW_DAYS` before the newest batch date seen
onward (S3's StartAfter, so older keys are never listed). Within that window a date is requested whenever its
unloads are complete and their fingerprint differs from the one last requested (a re-upload runs again). Older
dates are looked at by a sweep, every `sweep_every`: one full listing that requests the complete older dates
with an object modified since the newest modification the previous sweep saw (the storage's own clock), and
those a sweep found incomplete. The cursor holds the newest date, the window's fingerprints, the sweep's two
times and the older dates still incomplete: its size does not grow with history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from teem_assets.arrivals import DateUnloads

WINDOW_DAYS = 7
# Older dates still incomplete that the next sweep looks at again; beyond these, the oldest are given up
# (and reported) so that the cursor stays small.
MAX_WAITING = 60
# The dates of the last second a sweep saw whose fingerprints it keeps; should more share that second (a bulk
# upload), the next sweep requests the others again, and Dagster drops a run key it has seen.
LAST_SECOND_KEPT = 16
FINGERPRINT_CHARS = 16  # what the cursor keeps of a fingerprint, as the run key does

# Lists the dates from the given date (None: every date) -> their unloads.
Listing = Callable[[str | None], dict[str, DateUnloads]]


@dataclass
class WatchState:
    newest: str | None = None  # the newest batch date seen
    seen: dict[str, str] = field(default_factory=dict)  # date -> fingerprint last requested (see `tick`)
    swept_at: str | None = None  # when the last sweep ran, by the sensor's clock (ISO, UTC)
    modified_through: str | None = None  # the newest modification the last sweep saw, by the storage's clock
    waiting: list[str] = field(default_factory=list)  # dates before the window a sweep found incomplete

    @classmethod
    def from_cursor(cls, cursor: str | None) -> WatchState:
        """The state a cursor holds; the first sensor's cursor (date -> fingerprint, every date) is read too."""
        if not cursor:
            return cls()
        document = json.loads(cursor)
        if "newest" not in document:
            newest = max(document) if document else None
            return cls(newest, {d: f[:FINGERPRINT_CHARS] for d, f in document.items() if d >= _window_start(newest)})
        return cls(**document)

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def _window_start(newest: str | None) -> str:
    if newest is None:
        return ""
    return (dt.date.fromisoformat(newest) - dt.timedelta(days=WINDOW_DAYS)).isoformat()


@dataclass(frozen=True)
class Tick:
    requests: list[tuple[str, str]]  # (batch date, fingerprint), oldest first
    state: WatchState
    swept: bool
    ignored: list[str]  # folders that are not batch dates
    given_up: list[str]  # incomplete old dates no longer followed (MAX_WAITING)


def tick(
    state: WatchState,
    listing: Listing,
    is_batch_date: Callable[[str], bool],
    now: dt.datetime,
    sweep_every: dt.timedelta,
) -> Tick:
    """One evaluation: what to request, and the state for the next one.

    `seen` holds the fingerprints of the window's dates; between sweeps also of the dates that left the window
    (about one a day), and after a sweep of the dates modified in the last second it saw (S3 stamps objects to
    the second, so one uploaded in that second after the listing is still told apart from one it saw)."""
    last_sweep = dt.datetime.fromisoformat(state.swept_at) if state.swept_at else None
    sweep = state.newest is None or last_sweep is None or now - last_sweep >= sweep_every
    listed = listing(None if sweep else _window_start(state.newest))
    ignored = sorted(day for day in listed if not is_batch_date(day))
    found = {day: unloads for day, unloads in listed.items() if day not in ignored}
    newest = max([*found, *([state.newest] if state.newest else [])], default=None)
    window = _window_start(newest)
    modified_since = dt.datetime.fromisoformat(state.modified_through) if state.modified_through else None

    def wanted(day: str, unloads: DateUnloads) -> bool:
        if not unloads.complete or state.seen.get(day) == unloads.fingerprint[:FINGERPRINT_CHARS]:
            return False
        return day >= window or modified_since is None or unloads.modified >= modified_since or day in state.waiting

    requests = [(day, unloads.fingerprint) for day, unloads in sorted(found.items()) if wanted(day, unloads)]
    seen = {**state.seen, **{day: fp[:FINGERPRINT_CHARS] for day, fp in requests}}
    incomplete = {day for day, unloads in found.items() if day < window and not unloads.complete}
    if not sweep:
        waiting = sorted(incomplete | set(state.waiting))
        next_state = WatchState(newest, seen, state.swept_at, state.modified_through, waiting[-MAX_WAITING:])
        return Tick(requests, next_state, False, ignored, waiting[:-MAX_WAITING])
    through = max((u.modified for u in found.values()), default=modified_since)
    through = through - dt.timedelta(seconds=1) if through else None
    newest_first = sorted(found.items(), key=lambda item: item[1].modified, reverse=True)
    last_second = {
        day: unloads.fingerprint[:FINGERPRINT_CHARS]
        for day, unloads in newest_first[:LAST_SECOND_KEPT]
        if unloads.complete and through is not None and unloads.modified >= through
    }
    seen = {day: fp for day, fp in seen.items() if day >= window} | last_second
    waiting = sorted(incomplete)
    next_state = WatchState(
        newest, seen, now.isoformat(), through.isoformat() if through else None, waiting[-MAX_WAITING:]
    )
    return Tick(requests, next_state, True, ignored, waiting[:-MAX_WAITING])
