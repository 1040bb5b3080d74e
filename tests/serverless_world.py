"""moto's EMR Serverless, played: moto records applications and job runs but runs nothing, and ends every job
run SUCCESS the moment it is started. Here a job run starts SUBMITTED and `PlayingServerless` runs it as the
service does (its driver's Pipes variables from `spark.emr-serverless.driverEnv.*`), then ends it SUCCESS with
the utilization it was billed, or FAILED with its reason and its driver's stderr under the log URI. moto lacks
GetDashboardForJobRun, which dagster-aws's client calls: it is added, as AWS answers it."""

from __future__ import annotations

import gzip
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import boto3
import moto.emrserverless.models as serverless_models
import moto.emrserverless.urls as serverless_urls
from emr_world import REGION, PlayingService
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.emrserverless.models import JobRun, emrserverless_backends
from moto.emrserverless.responses import EMRServerlessResponse

DRIVER_ENV = "spark.emr-serverless.driverEnv."
DASHBOARD_PATH = "{0}/applications/(?P<applicationId>[^/]+)/jobruns/(?P<jobRunId>[^/]+)/dashboard$"
# What each played job run is billed for (EMR Serverless's billedResourceUtilization).
BILLED = {"vCPUHour": 0.5, "memoryGBHour": 2.0, "storageGBHour": 10.0}


def _dashboard(self: EMRServerlessResponse) -> ActionResult:
    job_run = self._get_param("jobRunId")
    return ActionResult({"url": f"https://p-{job_run}.emrappui-prod.{REGION}.amazonaws.com/shs/"})


@contextmanager
def serverless_on_moto(monkeypatch) -> Iterator[None]:
    """Before moto's server starts: job runs start SUBMITTED, and the dashboard operation exists."""
    monkeypatch.setattr(serverless_models, "JOB_STATUS", "SUBMITTED")
    monkeypatch.setitem(serverless_urls.url_paths, DASHBOARD_PATH, EMRServerlessResponse.dispatch)
    monkeypatch.setattr(EMRServerlessResponse, "get_dashboard_for_job_run", _dashboard, raising=False)
    yield


def driver_environment(job_run: JobRun) -> dict[str, str]:
    """The variables a job run's `--conf spark.emr-serverless.driverEnv.NAME=value` give its driver."""
    words = job_run.job_driver["sparkSubmit"]["sparkSubmitParameters"].split()
    settings = [words[i + 1] for i, word in enumerate(words) if word == "--conf"]
    return dict(s[len(DRIVER_ENV) :].split("=", 1) for s in settings if s.startswith(DRIVER_ENV))


def job_runs() -> list[JobRun]:
    backend = emrserverless_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [job_run for runs in list(backend.job_runs.values()) for job_run in list(runs)]


JobRunner = Callable[[JobRun], None]


class PlayingServerless(PlayingService):
    """EMR Serverless running each submitted job run with `run(job_run)` (raising fails it with the error's
    text as its stderr); `endpoint` is moto's, where the driver's stderr goes."""

    def __init__(self, run: JobRunner, endpoint: str) -> None:
        super().__init__("playing-emr-serverless")
        self._run = run
        self._s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        self.ran: list[str] = []  # names of the job runs run

    def play_waiting(self) -> None:
        for job_run in job_runs():
            if job_run.state == "SUBMITTED":
                self._play(job_run)

    def _play(self, job_run: JobRun) -> None:
        job_run.state = "RUNNING"
        self.ran.append(str(job_run.name))
        try:
            self._run(job_run)
            job_run.state = "SUCCESS"
        except Exception as error:  # the driver's exit, as the service records it
            job_run.state, job_run.state_details = "FAILED", "Job failed, please check complete logs in S3."
            self._write_stderr(job_run, f"{traceback.format_exc()}\n{error}")
        job_run.billed_resource_utilization = dict(BILLED)

    def _write_stderr(self, job_run: JobRun, text: str) -> None:
        log_uri = job_run.configuration_overrides["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
        bucket, prefix = log_uri.removeprefix("s3://").split("/", 1)
        key = f"{prefix.rstrip('/')}/applications/{job_run.application_id}/jobs/{job_run.id}/SPARK_DRIVER/stderr.gz"
        self._s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.encode()))
