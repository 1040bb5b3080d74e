"""The unload sensors against moto's S3 server on loopback, through dagster_aws's S3 resource and boto3."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from jobs.batch_jobs import batch_jobs
from jobs.sensors import unload_sensors
from resources.storage import StorageResource
from teem_assets.arrivals import DateUnloads, batch_unloads
from teem_assets.batch_watch import LAST_SECOND_KEPT, WINDOW_DAYS, WatchState, tick
from teem_assets.catalogue import DIMENSIONS
from teem_assets.settings import load

ROOT = "s3://teem/warehouse"


def put(s3, key: str, body: bytes = b'"1"|"x"\n') -> None:
    s3.put_object(Bucket="teem", Key=f"warehouse/{key}", Body=body)


def part(table: str, day: str, n: int = 0) -> str:
    return f"csv/{table}/incremental/{day}/{table}_{n:04d}_part_00"


def manifest(table: str, day: str) -> str:
    return f"csv/{table}/incremental/{day}/{table}_manifest"


def evaluate(name: str, tmp_path, cursor: str | None = None, root: str = ROOT) -> dg.SensorResult | dg.SkipReason:
    """One tick of the sensor `name`, made from the test's settings as the code location makes it."""
    settings = load()
    sensors = {s.name: s for s in unload_sensors(settings, batch_jobs(settings.max_runtime_seconds))}
    resources = {"storage": StorageResource(root=root), "s3": S3Resource()}
    return sensors[name](dg.build_sensor_context(cursor=cursor, resources=resources))


def requested(result: dg.SensorResult) -> list[tuple[str | None, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests]


@pytest.fixture
def settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "3600")  # no unload settles by silence during a test


def test_a_complete_unload_yields_one_run_and_only_once(s3, tmp_path, settle) -> None:
    for table in ("fact_event_by_day", "fact_attendance"):
        put(s3, part(table, "2019-09-01"))
        put(s3, manifest(table, "2019-09-01"))
    first = evaluate("batch_unload_sensor", tmp_path)
    [(partition, run_key)] = requested(first)
    assert partition == "2019-09-01" and run_key.startswith("batch-2019-09-01-")
    second = evaluate("batch_unload_sensor", tmp_path, first.cursor)
    assert requested(second) == []


def complete_unload(s3, table: str, day: str) -> None:
    put(s3, part(table, day))
    put(s3, manifest(table, day))


def test_one_fact_table_complete_and_the_other_absent_requests_nothing(s3, tmp_path, settle) -> None:
    complete_unload(s3, "fact_event_by_day", "2019-09-05")
    waiting = evaluate("batch_unload_sensor", tmp_path)
    assert requested(waiting) == []
    put(s3, part("fact_attendance", "2019-09-05"))  # arriving, no manifest yet
    still = evaluate("batch_unload_sensor", tmp_path, waiting.cursor)
    assert requested(still) == []
    put(s3, manifest("fact_attendance", "2019-09-05"))
    both = evaluate("batch_unload_sensor", tmp_path, still.cursor)
    assert [p for p, _ in requested(both)] == ["2019-09-05"]
    assert requested(evaluate("batch_unload_sensor", tmp_path, both.cursor)) == []


def test_a_half_written_unload_waits_until_it_completes(s3, tmp_path, settle) -> None:
    complete_unload(s3, "fact_attendance", "2019-09-02")
    put(s3, part("fact_event_by_day", "2019-09-02", 0))
    put(s3, part("fact_event_by_day", "2019-09-02", 1))
    waiting = evaluate("batch_unload_sensor", tmp_path)
    assert requested(waiting) == []
    put(s3, manifest("fact_event_by_day", "2019-09-02"))
    complete = evaluate("batch_unload_sensor", tmp_path, waiting.cursor)
    assert [p for p, _ in requested(complete)] == ["2019-09-02"]


def test_on_a_local_root_a_complete_unload_runs_once_and_a_settling_one_waits(tmp_path, monkeypatch) -> None:
    """The sensors on a folder root, the default: no S3 client involved, the files' own times for settling."""
    root = tmp_path / "root"

    def write(key: str, body: bytes = b'"1"|"x"\n') -> None:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(body)

    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "3600")
    for table in ("fact_event_by_day", "fact_attendance"):
        write(part(table, "2019-09-06"))
        write(manifest(table, "2019-09-06"))
    write(part("fact_event_by_day", "2019-09-07"))  # 2019-09-07: parts without manifests, not settled yet
    write(part("fact_attendance", "2019-09-07"))
    first = evaluate("batch_unload_sensor", tmp_path, root=str(root))
    assert [p for p, _ in requested(first)] == ["2019-09-06"]
    assert requested(evaluate("batch_unload_sensor", tmp_path, first.cursor, root=str(root))) == []
    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "0")  # now they count as settled
    assert [p for p, _ in requested(evaluate("batch_unload_sensor", tmp_path, first.cursor, root=str(root)))] == [
        "2019-09-07"
    ]
    for table in DIMENSIONS:
        write(f"csv/{table.name}/snapshot/{table.name}_0000_part_00")
        write(f"csv/{table.name}/snapshot/{table.name}_manifest")
    snapshot = evaluate("snapshot_unload_sensor", tmp_path, root=str(root))
    assert isinstance(snapshot, dg.SensorResult) and len(snapshot.run_requests) == 1


def test_an_unload_settles_without_a_manifest(s3, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "0")
    put(s3, part("fact_attendance", "2019-09-03"))
    put(s3, part("fact_event_by_day", "2019-09-03"))
    assert [p for p, _ in requested(evaluate("batch_unload_sensor", tmp_path))] == ["2019-09-03"]


def test_fifteen_hundred_keys_are_paged_through(s3, tmp_path, settle) -> None:
    days = ["2019-09-10", "2019-09-11", "2019-09-12"]
    for day in days:
        for n in range(500):
            put(s3, part("fact_attendance", day, n), b"")
        put(s3, manifest("fact_attendance", day))
        complete_unload(s3, "fact_event_by_day", day)
    result = evaluate("batch_unload_sensor", tmp_path)
    assert [p for p, _ in requested(result)] == days  # the last day's keys lie past the first page of 1,000
    assert set(json.loads(result.cursor)["seen"]) == set(days)


def test_a_reuploaded_unload_is_noticed(s3, tmp_path, settle) -> None:
    complete_unload(s3, "fact_attendance", "2019-09-04")
    put(s3, part("fact_event_by_day", "2019-09-04"))
    put(s3, manifest("fact_event_by_day", "2019-09-04"))
    first = evaluate("batch_unload_sensor", tmp_path)
    put(s3, part("fact_event_by_day", "2019-09-04"), b'"2"|"y"\n')  # the same key, new content
    second = evaluate("batch_unload_sensor", tmp_path, first.cursor)
    assert [p for p, _ in requested(second)] == ["2019-09-04"]
    assert requested(second)[0][1] != requested(first)[0][1]


def test_folders_that_are_not_batch_dates_are_not_requested(s3, tmp_path, settle) -> None:
    """Only YYYY-MM-DD names a batch: `20190903` and `2019-W36-2` are dates to Python 3.11's fromisoformat,
    never partition keys."""
    for folder in ("backup", "20190903", "2019-W36-2", "2019-09-03"):
        for table in ("fact_event_by_day", "fact_attendance"):
            put(s3, part(table, folder))
            put(s3, manifest(table, folder))
    assert [partition for partition, _ in requested(evaluate("batch_unload_sensor", tmp_path))] == ["2019-09-03"]


def test_a_new_dimension_snapshot_is_noticed(s3, tmp_path, settle) -> None:
    for table in DIMENSIONS[:-1]:
        put(s3, f"csv/{table.name}/snapshot/{table.name}_0000_part_00")
        put(s3, f"csv/{table.name}/snapshot/{table.name}_manifest")
    assert isinstance(evaluate("snapshot_unload_sensor", tmp_path), dg.SkipReason)  # one dimension still missing
    last = DIMENSIONS[-1].name
    put(s3, f"csv/{last}/snapshot/{last}_0000_part_00")
    put(s3, f"csv/{last}/snapshot/{last}_manifest")
    first = evaluate("snapshot_unload_sensor", tmp_path)
    assert len(first.run_requests) == 1
    assert isinstance(evaluate("snapshot_unload_sensor", tmp_path, first.cursor), dg.SkipReason)
    put(s3, f"csv/{last}/snapshot/{last}_0000_part_00", b'"new"\n')
    again = evaluate("snapshot_unload_sensor", tmp_path, first.cursor)
    assert len(again.run_requests) == 1 and again.run_requests[0].run_key != first.run_requests[0].run_key


THREE_YEARS = [(dt.date(2021, 1, 1) + dt.timedelta(days=n)).isoformat() for n in range(3 * 365)]
FACT_TABLES = ("fact_event_by_day", "fact_attendance")
CURSOR_LIMIT = 2048  # bytes, whatever the history


def put_all(s3, keys: list[str], body: bytes = b'"1"|"x"\n') -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: put(s3, key, body), keys))


def unload(day: str) -> list[str]:
    return [key for table in FACT_TABLES for key in (part(table, day), manifest(table, day))]


@pytest.fixture
def three_years(s3, settle) -> list[str]:
    put_all(s3, [key for day in THREE_YEARS for key in unload(day)])
    return THREE_YEARS


def test_three_years_of_unloads_a_new_day_and_an_old_one_uploaded_again(s3, tmp_path, three_years, monkeypatch):
    first = evaluate("batch_unload_sensor", tmp_path)  # the first tick sees everything: every date, once
    assert [p for p, _ in requested(first)] == three_years
    assert len(first.cursor) < CURSOR_LIMIT
    assert requested(evaluate("batch_unload_sensor", tmp_path, first.cursor)) == []

    new_day = "2024-01-01"
    put(s3, part("fact_event_by_day", new_day))  # half arrived: not yet
    waiting = evaluate("batch_unload_sensor", tmp_path, first.cursor)
    assert requested(waiting) == []
    put_all(s3, unload(new_day))
    arrived = evaluate("batch_unload_sensor", tmp_path, waiting.cursor)
    assert [p for p, _ in requested(arrived)] == [new_day]
    assert len(arrived.cursor) < CURSOR_LIMIT

    old_day = "2022-05-05"
    put(s3, part("fact_attendance", old_day), b'"2"|"corrected"\n')  # re-uploaded long after
    fast = evaluate("batch_unload_sensor", tmp_path, arrived.cursor)
    assert requested(fast) == []  # a tick between sweeps does not look that far back
    monkeypatch.setenv("TEEM_SENSOR_SWEEP_HOURS", "0")  # the sweep is due
    swept = evaluate("batch_unload_sensor", tmp_path, fast.cursor)
    # the one new run key is the re-upload's; a bulk upload's last second may be requested again with its
    # old run keys (LAST_SECOND_KEPT), which Dagster drops
    before = {key for result in (first, arrived) for _, key in requested(result)}
    [(partition, _)] = [request for request in requested(swept) if request[1] not in before]
    assert partition == old_day
    assert len(swept.cursor) < CURSOR_LIMIT
    assert requested(evaluate("batch_unload_sensor", tmp_path, swept.cursor)) == []  # the next sweep: nothing new


def test_a_tick_between_sweeps_lists_only_the_window(s3, three_years) -> None:
    now = dt.datetime.now(dt.UTC)
    listed: list[tuple[str | None, int]] = []

    def listing(first_date: str | None) -> dict[str, DateUnloads]:
        found = batch_unloads(ROOT, list(FACT_TABLES), now, dt.timedelta(hours=1), s3, first_date)
        listed.append((first_date, len(found)))
        return found

    first = tick(WatchState(), listing, lambda day: True, now, dt.timedelta(hours=24))
    assert first.swept and len(first.requests) == len(three_years)
    put_all(s3, unload("2024-01-01"))
    second = tick(first.state, listing, lambda day: True, now + dt.timedelta(minutes=1), dt.timedelta(hours=24))
    assert not second.swept and [day for day, _ in second.requests] == ["2024-01-01"]
    assert listed == [(None, len(three_years)), ("2023-12-24", WINDOW_DAYS + 2)]  # 2023-12-24 .. 2024-01-01
    assert second.state.newest == "2024-01-01"
    window = {day for day in second.state.seen if day >= "2023-12-24"}
    assert len(window) == WINDOW_DAYS + 2 and len(second.state.seen) <= len(window) + LAST_SECOND_KEPT


def test_the_first_sensors_cursor_is_read() -> None:
    old = json.dumps({"2019-09-01": "a" * 64, "2019-09-20": "b" * 64, "2019-09-21": "c" * 64})
    state = WatchState.from_cursor(old)
    assert state.newest == "2019-09-21" and state.seen == {"2019-09-20": "b" * 16, "2019-09-21": "c" * 16}
    assert state.swept_at is None  # so the next tick sweeps once
