"""Sensors that start runs when unloads land: one run per complete batch unload, one per new snapshot."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.batch_jobs import batch_job, snapshot_job
from resources.storage import StorageResource
from teem_assets.arrivals import DateUnloads, batch_unloads, complete_snapshots
from teem_assets.batch_watch import WINDOW_DAYS, WatchState, tick
from teem_assets.catalogue import DIMENSIONS, FACTS
from teem_assets.partitions import FIRST_BATCH_DATE
from teem_assets.settings import sensor_interval_seconds, sweep_interval, unload_settle_seconds


def _client(storage: StorageResource, s3: S3Resource) -> object | None:
    return s3.get_client() if storage.data.is_s3 else None


def _is_batch_date(name: str, today: dt.date) -> bool:
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return False
    return dt.date.fromisoformat(FIRST_BATCH_DATE) <= day <= today


@dg.sensor(
    job=batch_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    description="Requests one batch_job run per batch date whose unloads under csv/<fact>/incremental/ are "
    "complete (a manifest, or no new part for TEEM_UNLOAD_SETTLE_SECONDS). Each tick lists only the dates from "
    f"{WINDOW_DAYS} days before the newest one; a sweep every TEEM_SENSOR_SWEEP_HOURS lists them all and notices "
    "older unloads uploaded again. The run key names the unload's content, so a re-uploaded unload runs again "
    "and an unchanged one never does.",
)
def batch_unload_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource
) -> dg.SensorResult:
    now = dt.datetime.now(dt.UTC)
    settle = dt.timedelta(seconds=unload_settle_seconds())
    tables = [t.name for t in FACTS]
    client = _client(storage, s3)

    def listing(first_date: str | None) -> dict[str, DateUnloads]:
        return batch_unloads(storage.root, tables, now, settle, client, first_date)

    state = WatchState.from_cursor(context.cursor)
    found = tick(state, listing, lambda day: _is_batch_date(day, now.date()), now, sweep_interval())
    if found.ignored:
        context.log.warning(f"folders that are not batch dates since {FIRST_BATCH_DATE}: {', '.join(found.ignored)}")
    if found.given_up:
        context.log.warning(f"incomplete unloads no longer followed, too old: {', '.join(found.given_up)}")
    requests = [
        dg.RunRequest(run_key=f"batch-{day}-{content[:16]}", partition_key=day, tags={"teem/unload": content[:16]})
        for day, content in found.requests
    ]
    return dg.SensorResult(run_requests=requests, cursor=found.state.to_cursor())


@dg.sensor(
    job=snapshot_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    description="Lists csv/<dimension>/snapshot/ and requests one snapshot_job run when the dimension "
    "snapshots, all complete, differ from the last ones it requested.",
)
def snapshot_unload_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource
) -> dg.SensorResult | dg.SkipReason:
    now = dt.datetime.now(dt.UTC)
    settle = dt.timedelta(seconds=unload_settle_seconds())
    content = complete_snapshots(storage.root, [t.name for t in DIMENSIONS], now, settle, _client(storage, s3))
    if content is None:
        return dg.SkipReason("the dimension snapshots are not all there and complete")
    if content == context.cursor:
        return dg.SkipReason("no new dimension snapshot")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"snapshot-{content[:16]}")], cursor=content)


unload_sensors = [batch_unload_sensor, snapshot_unload_sensor]
