"""A Dagster run's work on EMR Serverless: the application its job runs go to, each job run it started (one a
Spark stage) and what they cost, reported when the run ends. The job runs themselves go through dagster-aws's
`PipesEMRServerlessClient`, told here to keep each job run's id and to say where its logs are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster_aws.pipes import PipesEMRServerlessClient

from resources.pipes_messages import delete_folder

# What EMR Serverless bills a job run for (its jobRun.billedResourceUtilization), by the rates' keys.
UTILIZATION = ("vCPUHour", "memoryGBHour", "storageGBHour")


@dataclass
class ServerlessRun:
    """`serverless` and `s3` are boto3 clients; `rates` USD a vCPU-hour, GB-hour of memory and of storage."""

    serverless: Any
    s3: Any
    rates: dict[str, float]
    application_id: str | None = None
    job_runs: list[str] = field(default_factory=list)  # every job run this run started, in order
    pipes_folders: set[tuple[str, str]] = field(default_factory=set)

    @property
    def region(self) -> str:
        return str(self.serverless.meta.region_name)

    def job_run(self, job_run_id: str) -> dict[str, Any]:
        return dict(self.serverless.get_job_run(applicationId=self.application_id, jobRunId=job_run_id)["jobRun"])

    def usage(self, job_run_ids: list[str] | None = None) -> tuple[dict[str, float], str]:
        """What the job runs (the run's, by default) were billed for, and its estimated cost at `rates`."""
        totals = dict.fromkeys(UTILIZATION, 0.0)
        for job_run_id in self.job_runs if job_run_ids is None else job_run_ids:
            billed = self.job_run(job_run_id).get("billedResourceUtilization") or {}
            for key in UTILIZATION:
                totals[key] += float(billed.get(key, 0.0))
        cost = sum(totals[key] * self.rates.get(key, 0.0) for key in UTILIZATION)
        return totals, f"{cost:.4f} USD"

    def delete_pipes_objects(self) -> None:
        for bucket, folder in sorted(self.pipes_folders):
            delete_folder(self.s3, bucket, folder)

    def report(self, log: Any) -> dict[str, str]:
        """What the run's job runs cost, as run tags and a line of its log."""
        if not self.job_runs:
            return {}
        totals, cost = self.usage()
        log.info(
            f"EMR Serverless for this run: job runs {', '.join(self.job_runs)} on application "
            f"{self.application_id}, {totals['vCPUHour']:.3f} vCPU-hours, {totals['memoryGBHour']:.3f} GB-hours "
            f"of memory, estimated {cost}"
        )
        return {
            "teem/emr_serverless_application": str(self.application_id),
            "teem/emr_serverless_job_runs": ",".join(self.job_runs),
            "teem/emr_serverless_vcpu_hours": f"{totals['vCPUHour']:.3f}",
            "teem/emr_serverless_memory_gb_hours": f"{totals['memoryGBHour']:.3f}",
            "teem/emr_serverless_estimated_cost": cost,
        }


class RunJobRunsClient(PipesEMRServerlessClient):
    """dagster-aws's client, each job run it starts kept on the Dagster run's `ServerlessRun`; the messages come
    through S3 (its own CloudWatch reader is not used), so the driver's logs are named where they are."""

    def __init__(self, run: ServerlessRun, log_uri: str, **kwargs: Any) -> None:
        super().__init__(client=run.serverless, **kwargs)
        self.job_runs_of_run, self.log_uri = run, log_uri

    def _start(self, context: Any, params: Any) -> Any:
        response = super()._start(context, params)
        self.job_runs_of_run.job_runs.append(response["jobRunId"])
        return response

    def _read_messages(self, context: Any, session: Any, response: Any) -> None:
        context.log.info(f"the job run's driver logs: {self.driver_logs(response['jobRun']['jobRunId'])}")

    def driver_logs(self, job_run_id: str) -> str:
        application = self.job_runs_of_run.application_id
        return f"{self.log_uri.rstrip('/')}/applications/{application}/jobs/{job_run_id}/SPARK_DRIVER/"

    def _extract_dagster_metadata(self, response: Any) -> Any:
        job_run_id = response["jobRun"]["jobRunId"]
        totals, cost = self.job_runs_of_run.usage([job_run_id])
        run_totals, run_cost = self.job_runs_of_run.usage()
        return {
            **super()._extract_dagster_metadata(response),
            "AWS EMR Serverless Driver Logs": dg.MetadataValue.path(self.driver_logs(job_run_id)),
            "job run's vCPU-hours": round(totals["vCPUHour"], 4),
            "job run's memory GB-hours": round(totals["memoryGBHour"], 4),
            "job run's estimated cost": cost,
            "run's EMR Serverless vCPU-hours so far": round(run_totals["vCPUHour"], 4),
            "run's EMR Serverless estimated cost so far": run_cost,
        }
