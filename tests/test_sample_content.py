"""The sample holds what the pipeline must cope with: zones, SCD2, awkward events, every escape."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import SAMPLE_SPEC

from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import batch_rows, snapshot_rows


def _rows(table: str) -> list[dict]:
    names = TABLES[table].column_names
    if TABLES[table].is_dimension:
        return [dict(zip(names, r)) for r in snapshot_rows(SAMPLE_SPEC, table)]
    return [dict(zip(names, r)) for day in SAMPLE_SPEC.batch_dates for r in batch_rows(SAMPLE_SPEC, table, day)]


def test_spaces_span_zones_west_with_dst_east_and_half_hour():
    zones = {r["space_timezone"] for r in _rows("dim_space")}
    offsets = {}
    for zone in zones - {None}:
        winter = dt.datetime(2019, 1, 15, tzinfo=ZoneInfo(zone)).utcoffset()
        summer = dt.datetime(2019, 7, 15, tzinfo=ZoneInfo(zone)).utcoffset()
        offsets[zone] = (winter, summer)
    assert any(w < dt.timedelta(0) and w != s for w, s in offsets.values())  # west, with DST
    assert any(w > dt.timedelta(0) for w, _ in offsets.values())  # east
    assert any(w.seconds % 3600 == 1800 for w, _ in offsets.values())  # a half-hour offset
    assert len({r["edw_space_company_id"] for r in _rows("dim_space")}) >= 3


def test_dimensions_carry_scd2_history():
    for table, durable, flag in [
        ("dim_company", "company_id", "edw_company_is_current_flag"),
        ("dim_space", "space_id", "edw_space_is_current_flag"),
        ("dim_calendar", "calendar_uuid", "edw_calendar_is_current_flag"),
    ]:
        rows = _rows(table)
        versions: dict[object, list[bool]] = {}
        for row in rows:
            versions.setdefault(row[durable], []).append(row[flag])
        histories = [flags for flags in versions.values() if len(flags) > 1]
        assert histories, table
        assert all(sorted(flags) == [False, True] for flags in histories), table


def test_events_cover_the_awkward_shapes():
    rows = _rows("fact_event_by_day")
    start = "event_by_day_local_scheduled_start_time"
    end = "event_by_day_local_scheduled_end_time"
    assert any(r[start].second or r[end].second for r in rows)
    assert any(r["event_by_day_multi_day_flag"] for r in rows)
    assert any(r[start].time() == dt.time() and r[end] - r[start] >= dt.timedelta(days=1) for r in rows)
    assert any(r["event_by_day_cancelled_at"] is not None for r in rows)
    assert any(r["event_by_day_local_actual_start_time"] is not None for r in rows)
    assert any(r[start].date() != r[end].date() and not r[start].time() == dt.time() for r in rows)


def test_fact_batches_update_rows_created_on_earlier_days():
    for table in ("fact_event_by_day", "fact_attendance"):
        spec = TABLES[table]
        late = [
            (day, row)
            for day in SAMPLE_SPEC.batch_dates
            for row in (dict(zip(spec.column_names, r)) for r in batch_rows(SAMPLE_SPEC, table, day))
            if row[spec.created_at].date() < day
        ]
        assert late, table
        assert all(row[spec.updated_at].date() == day for day, row in late)


def test_attendees_include_declined_rooms_and_resources():
    rows = _rows("fact_attendance")
    assert {"declined", "Declined"} <= {r["attendance_status"] for r in rows}
    roles = {r["attendance_role"] for r in rows}
    assert {"organizer", "room", "resource"} <= {role.lower() for role in roles}
    assert roles & {"ROOM", "RESOURCE", "Room"}


def test_the_unload_text_uses_every_escape(sample_root: Path):
    text = b"".join(gzip.decompress(p.read_bytes()) for p in (sample_root / "csv").rglob("*.gz"))
    for needle in [b"\\|", b'\\"', b"\\'", b"\\\\", b"\\\n", b"\\\r", b'""', b'"\\\\N"', b'"\\N"']:
        assert needle in text, needle
    assert "🚀".encode() in text and "東京".encode() in text
