"""ended_run_clusters_sensor: a run that failed or was canceled without its worker (killed, its machine gone)
never reached the end that terminates its EMR cluster and empties its Pipes folder, and the cluster's step may
run for hours before EMR's idle timeout applies, writing what a new run writes too. The daemon does both as
soon as the run ends."""

from __future__ import annotations

import dagster as dg

from jobs.batch_jobs import Jobs
from resources.spark import AUTO, EMR, SparkResource
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
        description=f"Terminates the EMR clusters a run left up when it ended {status.value.lower()} without its "
        "worker (the worker's own end terminates them otherwise).",
    )
    def terminate_clusters(
        context: dg.RunStatusSensorContext, spark: SparkResource, storage: StorageResource
    ) -> dg.SkipReason:
        if spark.where not in (EMR, AUTO):
            return dg.SkipReason(f"TEEM_SPARK is {spark.where}: no cluster")
        run_id = context.dagster_run.run_id
        ended = spark.emr.terminate_clusters_of(run_id)
        if storage.data.is_s3:  # the Pipes objects its steps' readers never deleted
            spark.emr.delete_pipes_objects_of(storage.data, run_id)
        if ended:
            context.log.warning(f"terminated EMR {', '.join(ended)}, left up by run {run_id}")
            return dg.SkipReason(f"terminated {', '.join(ended)}, left up by run {run_id}")
        return dg.SkipReason(f"run {run_id} left no EMR cluster up")

    return terminate_clusters
