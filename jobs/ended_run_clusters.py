"""ended_run_clusters_sensor: a run that failed or was canceled without its worker (killed, its machine gone)
never reached the end that terminates its EMR cluster and empties its Pipes folder, and the cluster's step may
run for hours before EMR's idle timeout applies, writing what a new run writes too. The daemon does both as
soon as the run ends."""

from __future__ import annotations

import dagster as dg

from jobs.batch_jobs import Jobs
from resources.spark import AUTO, EMR, EMR_SERVERLESS, SparkResource
from resources.storage import StorageResource


def ended_run_clusters_sensors(jobs: Jobs) -> list[dg.SensorDefinition]:
    """One sensor per way a run can end without its worker: failure (run monitoring, `jobs.dead_runs`) and cancel."""
    return [_sensor(jobs, status) for status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]


def _sensor(jobs: Jobs, status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name=f"ended_run_clusters_{status.value.lower()}",
        run_status=status,
        monitored_jobs=[jobs.snapshot, jobs.batch, jobs.migration, jobs.admitted],
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=f"Terminates the EMR clusters (cancels the EMR Serverless job runs) a run left up when it ended "
        f"{status.value.lower()} without its worker (the worker's own end ends them otherwise).",
    )
    def terminate_clusters(
        context: dg.RunStatusSensorContext, spark: SparkResource, storage: StorageResource
    ) -> dg.SkipReason:
        place = spark.auto_cluster if spark.where == AUTO else spark.where
        run_id = context.dagster_run.run_id
        if place == EMR:
            ended, what = spark.emr.terminate_clusters_of(run_id), "terminated EMR"
            if storage.data.is_s3:  # the Pipes objects its steps' readers never deleted
                spark.emr.delete_pipes_objects_of(storage.data, run_id)
        elif place == EMR_SERVERLESS:
            ended, what = spark.emr_serverless.cancel_job_runs_of(run_id), "cancelled EMR Serverless job runs"
            if storage.data.is_s3:
                spark.emr_serverless.delete_pipes_objects_of(storage.data, run_id)
        else:
            return dg.SkipReason(f"TEEM_SPARK is {spark.where}: no cluster")
        if ended:
            context.log.warning(f"{what} {', '.join(ended)}, left up by run {run_id}")
            return dg.SkipReason(f"{what} {', '.join(ended)}, left up by run {run_id}")
        return dg.SkipReason(f"run {run_id} left nothing up on {place}")

    return terminate_clusters
