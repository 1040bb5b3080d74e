"""Sensors that start runs when unloads land: one run per complete batch unload, one per new snapshot."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.batch_jobs import batch_job, snapshot_job
from resources.storage import StorageResource
from teem_assets.arrivals import complete_batches, complete_snapshots
from teem_assets.catalogue import DIMENSIONS, FACTS
from teem_assets.partitions import FIRST_BATCH_DATE
from teem_assets.settings import sensor_interval_seconds, unload_settle_seconds


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
    description="Lists csv/<fact>/incremental/ and requests one batch_job run per batch date whose unloads are "
    "complete (a manifest, or no new part for TEEM_UNLOAD_SETTLE_SECONDS). The run key names the unload's "
    "content, so a re-uploaded unload runs again and an unchanged one never does.",
)
def batch_unload_sensor(
    context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource
) -> dg.SensorResult:
    now = dt.datetime.now(dt.UTC)
    settle = dt.timedelta(seconds=unload_settle_seconds())
    found = complete_batches(storage.root, [t.name for t in FACTS], now, settle, _client(storage, s3))
    ignored = sorted(day for day in found if not _is_batch_date(day, now.date()))
    if ignored:
        context.log.warning(f"folders that are not batch dates since {FIRST_BATCH_DATE}: {', '.join(ignored)}")
    seen = json.loads(context.cursor) if context.cursor else {}
    requests = [
        dg.RunRequest(run_key=f"batch-{day}-{content[:16]}", partition_key=day, tags={"teem/unload": content[:16]})
        for day, content in found.items()
        if day not in ignored and seen.get(day) != content
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({**seen, **found}, sort_keys=True))


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
