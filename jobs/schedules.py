"""Schedules: the daily batch, the weekly snapshot, and the hourly freshness check. All start stopped: the
unload sensors are the usual trigger, the batch schedule is for unloads that land at a fixed hour."""

from __future__ import annotations

import dagster as dg

from jobs.batch_jobs import RUN_TAGS, batch_job, snapshot_job
from teem_assets.checks.freshness import freshness_checks

daily_batch_schedule = dg.build_schedule_from_partitioned_job(
    batch_job,
    name="daily_batch_schedule",
    hour_of_day=6,
    description="At 06:00 UTC, batch_job for yesterday's batch date.",
)

weekly_snapshot_schedule = dg.ScheduleDefinition(
    name="weekly_snapshot_schedule",
    job=snapshot_job,
    cron_schedule="0 5 * * 1",
    execution_timezone="UTC",
    description="On Mondays at 05:00 UTC, snapshot_job: the dimensions from their newest snapshots.",
)

freshness_job = dg.define_asset_job(
    "freshness_job",
    selection=dg.AssetSelection.checks(*freshness_checks),
    tags=RUN_TAGS,
    description="The freshness checks of the migrated fact tables.",
)

freshness_schedule = dg.ScheduleDefinition(
    name="freshness_schedule",
    job=freshness_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    description="Every hour, checks that the newest migrated batch is recent enough.",
)

schedules = [daily_batch_schedule, weekly_snapshot_schedule, freshness_schedule]
