"""The unload sensors against moto's S3 server on loopback, through dagster_aws's S3 resource and boto3."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from jobs.sensors import batch_unload_sensor, snapshot_unload_sensor
from resources.storage import StorageResource
from teem_assets.catalogue import DIMENSIONS

ROOT = "s3://teem/warehouse"


def put(s3, key: str, body: bytes = b'"1"|"x"\n') -> None:
    s3.put_object(Bucket="teem", Key=f"warehouse/{key}", Body=body)


def part(table: str, day: str, n: int = 0) -> str:
    return f"csv/{table}/incremental/{day}/{table}_{n:04d}_part_00"


def manifest(table: str, day: str) -> str:
    return f"csv/{table}/incremental/{day}/{table}_manifest"


def evaluate(sensor: dg.SensorDefinition, tmp_path, cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    resources = {"storage": StorageResource(root=ROOT), "s3": S3Resource()}
    return sensor(dg.build_sensor_context(cursor=cursor, resources=resources))


def requested(result: dg.SensorResult) -> list[tuple[str | None, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests]


@pytest.fixture
def settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "3600")  # no unload settles by silence during a test


def test_a_complete_unload_yields_one_run_and_only_once(s3, tmp_path, settle) -> None:
    for table in ("fact_event_by_day", "fact_attendance"):
        put(s3, part(table, "2019-09-01"))
        put(s3, manifest(table, "2019-09-01"))
    first = evaluate(batch_unload_sensor, tmp_path)
    [(partition, run_key)] = requested(first)
    assert partition == "2019-09-01" and run_key.startswith("batch-2019-09-01-")
    second = evaluate(batch_unload_sensor, tmp_path, first.cursor)
    assert requested(second) == []


def test_a_half_written_unload_waits_until_it_completes(s3, tmp_path, settle) -> None:
    put(s3, part("fact_event_by_day", "2019-09-02", 0))
    put(s3, part("fact_event_by_day", "2019-09-02", 1))
    waiting = evaluate(batch_unload_sensor, tmp_path)
    assert requested(waiting) == []
    put(s3, manifest("fact_event_by_day", "2019-09-02"))
    complete = evaluate(batch_unload_sensor, tmp_path, waiting.cursor)
    assert [p for p, _ in requested(complete)] == ["2019-09-02"]


def test_an_unload_settles_without_a_manifest(s3, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TEEM_UNLOAD_SETTLE_SECONDS", "0")
    put(s3, part("fact_attendance", "2019-09-03"))
    assert [p for p, _ in requested(evaluate(batch_unload_sensor, tmp_path))] == ["2019-09-03"]


def test_fifteen_hundred_keys_are_paged_through(s3, tmp_path, settle) -> None:
    days = ["2019-09-10", "2019-09-11", "2019-09-12"]
    for day in days:
        for n in range(500):
            put(s3, part("fact_attendance", day, n), b"")
        put(s3, manifest("fact_attendance", day))
    result = evaluate(batch_unload_sensor, tmp_path)
    assert [p for p, _ in requested(result)] == days  # the last day's keys lie past the first page of 1,000
    assert set(json.loads(result.cursor)) == set(days)


def test_a_reuploaded_unload_is_noticed(s3, tmp_path, settle) -> None:
    put(s3, part("fact_event_by_day", "2019-09-04"))
    put(s3, manifest("fact_event_by_day", "2019-09-04"))
    first = evaluate(batch_unload_sensor, tmp_path)
    put(s3, part("fact_event_by_day", "2019-09-04"), b'"2"|"y"\n')  # the same key, new content
    second = evaluate(batch_unload_sensor, tmp_path, first.cursor)
    assert [p for p, _ in requested(second)] == ["2019-09-04"]
    assert requested(second)[0][1] != requested(first)[0][1]


def test_folders_that_are_not_batch_dates_are_not_requested(s3, tmp_path, settle) -> None:
    put(s3, part("fact_event_by_day", "backup"))
    put(s3, manifest("fact_event_by_day", "backup"))
    assert requested(evaluate(batch_unload_sensor, tmp_path)) == []


def test_a_new_dimension_snapshot_is_noticed(s3, tmp_path, settle) -> None:
    for table in DIMENSIONS[:-1]:
        put(s3, f"csv/{table.name}/snapshot/{table.name}_0000_part_00")
        put(s3, f"csv/{table.name}/snapshot/{table.name}_manifest")
    assert isinstance(evaluate(snapshot_unload_sensor, tmp_path), dg.SkipReason)  # one dimension still missing
    last = DIMENSIONS[-1].name
    put(s3, f"csv/{last}/snapshot/{last}_0000_part_00")
    put(s3, f"csv/{last}/snapshot/{last}_manifest")
    first = evaluate(snapshot_unload_sensor, tmp_path)
    assert len(first.run_requests) == 1
    assert isinstance(evaluate(snapshot_unload_sensor, tmp_path, first.cursor), dg.SkipReason)
    put(s3, f"csv/{last}/snapshot/{last}_0000_part_00", b'"new"\n')
    again = evaluate(snapshot_unload_sensor, tmp_path, first.cursor)
    assert len(again.run_requests) == 1 and again.run_requests[0].run_key != first.run_requests[0].run_key
