"""held_back_sensor: the dates of a failed range run that passed its volume check, requested as admitted_job
runs when another date of the run was short (teem_assets.assets.held_back)."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from jobs.batch_jobs import Jobs
from resources.run_dates import batch_dates_of
from teem_assets.assets.held_back import admitted_ranges, held_back

HELD_BACK_BY_TAG = "teem/held_back_by"


def admitted_requests(run: dg.DagsterRun, evaluations: list[dg.AssetCheckEvaluation]) -> list[dg.RunRequest]:
    """One admitted_job run per unbroken range of the run's dates that its volume checks passed, when they found
    some of its dates short; none otherwise."""
    dates, held = batch_dates_of(run), held_back(evaluations)
    if dates is None or not held:
        return []
    return [
        dg.RunRequest(
            run_key=f"{run.run_id}-{first}",
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last,
                HELD_BACK_BY_TAG: run.run_id,
            },
        )
        for first, last in admitted_ranges(*dates, held)
    ]


def held_back_sensor(jobs: Jobs) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="held_back_sensor",
        run_status=dg.DagsterRunStatus.FAILURE,
        monitored_jobs=[jobs.batch, jobs.migration],
        request_job=jobs.admitted,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=15,
        description="When a range run of batch_job or migration_job stopped at Parquet because some of its dates "
        "were short (volume check), requests admitted_job for its other dates, one run per unbroken range: the "
        "short dates stay failed in every layer past Parquet, the others materialize.",
    )
    def held_back_dates(context: dg.RunStatusSensorContext) -> list[dg.RunRequest]:
        run = context.dagster_run
        events = context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = [e.dagster_event.asset_check_evaluation_data for e in events if e.dagster_event]
        return admitted_requests(run, evaluations)

    return held_back_dates
