"""Sensors that start runs when unloads land: one run per complete batch unload, one per new snapshot."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.batch_jobs import Jobs
from resources.storage import StorageResource
from teem_assets.arrivals import DateUnloads, batch_unloads, complete_snapshots
from teem_assets.batch_watch import WINDOW_DAYS, WatchState, tick
from teem_assets.catalogue import DIMENSIONS, FACTS
from teem_assets.settings import Settings


def _client(storage: StorageResource, s3: S3Resource) -> object | None:
    return s3.get_client() if storage.data.is_s3 else None


def _is_batch_date(name: str, first: str, today: dt.date) -> bool:
    """A folder named YYYY-MM-DD, from `first` to `today`: Python 3.11's fromisoformat also reads `20190901` and
    `2019-W35-7`, which are no partition key, and a run requested for one would fail every tick."""
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return False
    return day.isoformat() == name and dt.date.fromisoformat(first) <= day <= today


BATCH_DESCRIPTION = (
    "Requests one batch_job run per batch date whose unloads under csv/<fact>/incremental/ are "
    "complete (a manifest, or no new part for TEEM_UNLOAD_SETTLE_SECONDS). Each tick lists only the dates from "
    f"{WINDOW_DAYS} days before the newest one; a sweep every TEEM_SENSOR_SWEEP_HOURS lists them all and notices "
    "older unloads uploaded again. The run key names the unload's content, so a re-uploaded unload runs again "
    "and an unchanged one never does."
)


def batch_unloads_due(
    context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource, settings: Settings
) -> dg.SensorResult:
    """A tick of batch_unload_sensor."""
    now = dt.datetime.now(dt.UTC)
    settle = dt.timedelta(seconds=settings.unload_settle_seconds)
    first = settings.first_batch_date
    tables = [t.name for t in FACTS]
    client = _client(storage, s3)

    def listing(first_date: str | None) -> dict[str, DateUnloads]:
        return batch_unloads(storage.root, tables, now, settle, client, first_date)

    state = WatchState.from_cursor(context.cursor)
    found = tick(state, listing, lambda day: _is_batch_date(day, first, now.date()), now, settings.sweep_interval)
    if found.ignored:
        context.log.warning(f"folders that are not batch dates since {first}: {', '.join(found.ignored)}")
    if found.given_up:
        context.log.warning(f"incomplete unloads no longer followed, too old: {', '.join(found.given_up)}")
    requests = [
        dg.RunRequest(run_key=f"batch-{day}-{content[:16]}", partition_key=day, tags={"teem/unload": content[:16]})
        for day, content in found.requests
    ]
    return dg.SensorResult(run_requests=requests, cursor=found.state.to_cursor())


def snapshots_due(
    context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource, settings: Settings
) -> dg.SensorResult | dg.SkipReason:
    """A tick of snapshot_unload_sensor."""
    now = dt.datetime.now(dt.UTC)
    settle = dt.timedelta(seconds=settings.unload_settle_seconds)
    content = complete_snapshots(storage.root, [t.name for t in DIMENSIONS], now, settle, _client(storage, s3))
    if content is None:
        return dg.SkipReason("the dimension snapshots are not all there and complete")
    if content == context.cursor:
        return dg.SkipReason("no new dimension snapshot")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"snapshot-{content[:16]}")], cursor=content)


def unload_sensors(settings: Settings, jobs: Jobs) -> list[dg.SensorDefinition]:
    """The two sensors, ticking every TEEM_SENSOR_INTERVAL_SECONDS."""

    @dg.sensor(job=jobs.batch, minimum_interval_seconds=settings.sensor_interval_seconds, description=BATCH_DESCRIPTION)
    def batch_unload_sensor(
        context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource
    ) -> dg.SensorResult:
        return batch_unloads_due(context, storage, s3, settings)

    @dg.sensor(
        job=jobs.snapshot,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        description="Lists csv/<dimension>/snapshot/ and requests one snapshot_job run when the dimension "
        "snapshots, all complete, differ from the last ones it requested.",
    )
    def snapshot_unload_sensor(
        context: dg.SensorEvaluationContext, storage: StorageResource, s3: S3Resource
    ) -> dg.SensorResult | dg.SkipReason:
        return snapshots_due(context, storage, s3, settings)

    return [batch_unload_sensor, snapshot_unload_sensor]
