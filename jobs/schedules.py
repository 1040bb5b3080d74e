"""Schedules: the daily batch, the weekly snapshot, the weekly upkeep of the tables, and the hourly freshness
check. All start stopped: the unload sensors are the usual trigger, the batch schedule is for unloads that land
at a fixed hour."""

from __future__ import annotations

import dagster as dg

from jobs.batch_jobs import Jobs


def schedules(jobs: Jobs) -> list[dg.ScheduleDefinition]:
    return [
        dg.build_schedule_from_partitioned_job(
            jobs.batch,
            name="daily_batch_schedule",
            hour_of_day=6,
            description="At 06:00 UTC, batch_job for yesterday's batch date.",
        ),
        dg.ScheduleDefinition(
            name="weekly_snapshot_schedule",
            job=jobs.snapshot,
            cron_schedule="0 5 * * 1",
            execution_timezone="UTC",
            description="On Mondays at 05:00 UTC, snapshot_job: the dimensions from their newest snapshots.",
        ),
        dg.ScheduleDefinition(
            name="weekly_maintenance_schedule",
            job=jobs.maintenance,
            cron_schedule="0 3 * * 0",
            execution_timezone="UTC",
            description="On Sundays at 03:00 UTC, maintenance_job: the upkeep of every Iceberg table.",
        ),
        dg.ScheduleDefinition(
            name="freshness_schedule",
            job=jobs.freshness,
            cron_schedule="0 * * * *",
            execution_timezone="UTC",
            description="Every hour, checks that the newest migrated batch is recent enough.",
        ),
    ]
