"""Amazon EMR Serverless as a place to run the stages (DESIGN §4, `TEEM_SPARK=emr-serverless`): each Spark
stage is a job run on the application a setting names (created on first use, then reused by every run), through
dagster-aws's `PipesEMRServerlessClient`, the context and messages through S3 under the data root. The project's
Python and packages travel as the relocatable environment `teem package --target emr-serverless` built, which
Spark unpacks beside the driver and each executor (`spark.archives`)."""

from __future__ import annotations

import math
from typing import Any

import dagster as dg
from botocore.exceptions import ClientError
from dagster_aws.pipes import PipesS3ContextInjector

from resources.aws_clients import aws_client
from resources.emr import MANAGED_POLICY_TAG, STEP_NAME_LIMIT, EmrSettingError, check_release
from resources.pipes_messages import RootPrefixedS3MessageReader, delete_folder, run_folder
from resources.s3_objects import s3_object_exists
from resources.serverless_run import RunJobRunsClient, ServerlessRun
from resources.stage_results import StageResult, failures_in
from resources.stderr_tail import stderr_tail
from teem_assets.data_root import DataRoot
from teem_assets.stages.entry import REQUEST_EXTRA
from teem_assets.stages.request import StageRequest
from teem_assets.unload.location import split_s3

# Where spark.archives unpacks the environment in each driver's and executor's working folder.
ENVIRONMENT = "environment"
PYTHON = f"./{ENVIRONMENT}/bin/python"
# EMR Serverless's own Iceberg runtime (its release's), as AWS's Iceberg guide for Serverless loads it.
ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
LIVE_APPLICATION_STATES = ["CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED"]
LIVE_JOB_RUN_STATES = ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"]
SHORTEST_TIMEOUT_MINUTES = 5  # EMR Serverless's least executionTimeoutMinutes


class EmrServerlessResource(dg.ConfigurableResource):
    """Settings from TEEM_EMR_SERVERLESS_* (README); AWS credentials only from AWS's default chain."""

    application_name: str = "teem-pipelines"
    release_label: str = "emr-7.12.0"
    untested_release: bool = False
    execution_role_arn: str | None = None  # the job runs' role: S3 on the root and the archive, Glue
    # createApplication's initialCapacity (pre-initialized workers, billed while the application is started)
    # and maximumCapacity; empty: none, and the account's limits
    initial_capacity: dict[str, Any] = {}  # noqa: RUF012 - pydantic copies field defaults
    maximum_capacity: dict[str, str] = {}  # noqa: RUF012
    idle_stop_minutes: int = 15  # the application stops (and its pre-initialized capacity with it) when idle
    archive_uri: str | None = None  # built and uploaded by `teem package --target emr-serverless --upload`
    log_uri: str | None = None  # default: <root>/logs/emr-serverless/
    spark_conf: dict[str, str] = {}  # noqa: RUF012
    poll_seconds: float = 30.0
    stderr_wait_seconds: float = 120.0
    job_timeout_seconds: int = 21600  # TEEM_MAX_RUNTIME_SECONDS: a job run past it is ended by EMR Serverless
    # USD a vCPU-hour, a GB-hour of memory and of storage (x86, us-east-1, 2026): each run's estimated cost
    rates: dict[str, float] = {"vCPUHour": 0.052624, "memoryGBHour": 0.0057785, "storageGBHour": 0.000111}  # noqa: RUF012
    region: str | None = None
    aws_endpoint_url: str | None = None  # every service's, unless its own is set
    s3_endpoint_url: str | None = None
    serverless_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_EMR_SERVERLESS

    def _client(self, service: str) -> Any:
        own = {"s3": self.s3_endpoint_url, "emr-serverless": self.serverless_endpoint_url}.get(service)
        return aws_client(service, self.region, own, self.aws_endpoint_url)

    def entry_point_uri(self) -> str:
        return f"{self.archive_uri}.teem_stage.py"

    def validate(self, root: DataRoot) -> None:
        """Every setting a job run would fail on, checked before the first one starts."""
        if not root.is_s3:
            raise EmrSettingError(f"TEEM_ROOT is {root.root!r}: EMR Serverless reads and writes the root on S3")
        if not (self.execution_role_arn or "").startswith("arn:"):
            raise EmrSettingError(
                "execution_role_arn (TEEM_EMR_SERVERLESS_EXECUTION_ROLE_ARN) is not a role's ARN: the job runs' role"
            )
        check_release(self.release_label, self.untested_release, "TEEM_EMR_SERVERLESS")
        if not self.archive_uri:
            raise EmrSettingError(
                "archive_uri (TEEM_EMR_SERVERLESS_ARCHIVE_URI) is not set: run "
                "`teem package --target emr-serverless --upload URI`"
            )
        for uri in (self.archive_uri, self.entry_point_uri()):
            if not s3_object_exists(self._client("s3"), uri):
                raise EmrSettingError(
                    f"archive_uri (TEEM_EMR_SERVERLESS_ARCHIVE_URI): {uri} does not exist; run "
                    f"`teem package --target emr-serverless --upload {self.archive_uri}`"
                )

    def application_id(self, log: Any) -> str:
        """The application named `application_name`, created if there is none. Two runs that both found none
        each create one: both then use the oldest, and the other is deleted."""
        serverless = self._client("emr-serverless")
        found = self._applications(serverless)
        created = None
        if not found:
            created = serverless.create_application(**self.application_request())["applicationId"]
            log.info(f"created EMR Serverless application {self.application_name!r} ({created})")
            found = self._applications(serverless)
        chosen = min(found, key=lambda a: (a["createdAt"], a["id"]))
        if created is not None and created != chosen["id"]:
            log.warning(f"another run created {chosen['id']} at the same time: using it, deleting {created}")
            try:
                serverless.delete_application(applicationId=created)
            except ClientError as error:
                log.warning(f"{created} could not be deleted ({error}); it holds no capacity while idle")
        if chosen["releaseLabel"] != self.release_label:
            raise EmrSettingError(
                f"EMR Serverless application {self.application_name!r} ({chosen['id']}) runs "
                f"{chosen['releaseLabel']}, the settings say {self.release_label} (TEEM_EMR_SERVERLESS_RELEASE_LABEL): "
                "name another application (TEEM_EMR_SERVERLESS_APPLICATION) or upgrade this one"
            )
        return str(chosen["id"])

    def _applications(self, serverless: Any) -> list[dict[str, Any]]:
        pages = serverless.get_paginator("list_applications").paginate(states=LIVE_APPLICATION_STATES)
        return [a for page in pages for a in page["applications"] if a["name"] == self.application_name]

    def application_request(self) -> dict[str, Any]:
        capacity = {"initialCapacity": self.initial_capacity} if self.initial_capacity else {}
        if self.maximum_capacity:
            capacity["maximumCapacity"] = self.maximum_capacity
        return {
            "name": self.application_name,
            "releaseLabel": self.release_label,
            "type": "SPARK",
            "autoStartConfiguration": {"enabled": True},
            "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": self.idle_stop_minutes},
            "tags": {MANAGED_POLICY_TAG: "true", "teem/application": self.application_name},
            **capacity,
        }

    def logs_at(self, root: DataRoot) -> str:
        return self.log_uri or f"{root.root.rstrip('/')}/logs/emr-serverless/"

    def spark_submit_conf(self) -> dict[str, str]:
        """The job run's Spark settings: the environment's Python for the driver and executors, the region (boto3
        reads none from the workers' metadata), UTC, numba's cache in each worker's own folder."""
        region = str(self._client("emr-serverless").meta.region_name)
        environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "TZ": "UTC", "NUMBA_CACHE_DIR": "./numba"}
        conf = {
            "spark.archives": f"{self.archive_uri}#{ENVIRONMENT}",
            "spark.jars": ICEBERG_JAR,
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON,
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON,
            "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        }
        for name, value in environment.items():
            conf[f"spark.emr-serverless.driverEnv.{name}"] = value
            conf[f"spark.executorEnv.{name}"] = value
        return {**conf, **self.spark_conf}

    def job_run_request(self, request: StageRequest, application_id: str, root: DataRoot) -> dict[str, Any]:
        parameters = " ".join(f"--conf {key}={value}" for key, value in self.spark_submit_conf().items())
        return {
            "applicationId": application_id,
            "executionRoleArn": self.execution_role_arn,
            "name": f"teem {request.stage} {','.join(request.tables)}"[:STEP_NAME_LIMIT],
            "jobDriver": {"sparkSubmit": {"entryPoint": self.entry_point_uri(), "sparkSubmitParameters": parameters}},
            "configurationOverrides": {
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": self.logs_at(root)}}
            },
            "executionTimeoutMinutes": max(SHORTEST_TIMEOUT_MINUTES, math.ceil(self.job_timeout_seconds / 60)),
        }

    def run_state(self) -> ServerlessRun:
        return ServerlessRun(self._client("emr-serverless"), self._client("s3"), dict(self.rates))

    def pipes_folder(self, root: DataRoot, run_id: str) -> tuple[str, str]:
        bucket, prefix = split_s3(root.root)
        return bucket, run_folder(prefix, run_id)

    def run_stage(
        self, context: dg.AssetExecutionContext, request: StageRequest, root: DataRoot, run: ServerlessRun
    ) -> tuple[list[StageResult], list[str]]:
        """The stage's results, and what it could not do, from a job run on the application."""
        if run.application_id is None:
            self.validate(root)
            run.application_id = self.application_id(context.log)
        bucket, folder = self.pipes_folder(root, context.run.run_id)
        run.pipes_folders.add((bucket, folder))
        client = RunJobRunsClient(
            run,
            self.logs_at(root),
            context_injector=PipesS3ContextInjector(bucket=bucket, client=run.s3, key_prefix=f"{folder}/"),
            message_reader=RootPrefixedS3MessageReader(folder=folder, bucket=bucket, client=run.s3, interval=5),
            poll_interval=self.poll_seconds,
        )
        params = self.job_run_request(request, run.application_id, root)
        started = len(run.job_runs)
        try:
            invocation = client.run(
                context=context,
                start_job_run_params=params,  # type: ignore[arg-type]
                extras={REQUEST_EXTRA: request.to_json()},
            )
        except RuntimeError as error:  # dagster-aws's "job failed": say which, why, and its stderr's end
            if len(run.job_runs) == started:
                raise
            raise dg.Failure(self._failure(client, run.job_runs[-1])) from error
        results = invocation.get_results(implicit_materializations=False)
        return list(results), failures_in(invocation.get_custom_messages())

    def _failure(self, client: RunJobRunsClient, job_run_id: str) -> str:
        job_run = client.job_runs_of_run.job_run(job_run_id)
        why = job_run.get("stateDetails") or "no reason given"
        uri = f"{client.driver_logs(job_run_id)}stderr.gz"
        tail = stderr_tail(client.job_runs_of_run.s3, uri, self.stderr_wait_seconds, self.poll_seconds)
        return f"EMR Serverless job run {job_run_id} ({job_run.get('name')}) {job_run['state']}: {why}{tail}"

    def cancel_job_runs_of(self, run_id: str) -> list[str]:
        """Cancel the job runs still live that a Dagster run started (tag `dagster/run-id`, which dagster-aws
        puts on each): those of a run whose worker died. Returns their ids."""
        serverless, cancelled = self._client("emr-serverless"), []
        for application in self._applications(serverless):
            pages = serverless.get_paginator("list_job_runs").paginate(
                applicationId=application["id"], states=LIVE_JOB_RUN_STATES
            )
            for summary in (s for page in pages for s in page["jobRuns"]):
                job_run = serverless.get_job_run(applicationId=application["id"], jobRunId=summary["id"])["jobRun"]
                if (job_run.get("tags") or {}).get("dagster/run-id") == run_id:
                    serverless.cancel_job_run(applicationId=application["id"], jobRunId=summary["id"])
                    cancelled.append(summary["id"])
        return cancelled

    def delete_pipes_objects_of(self, root: DataRoot, run_id: str) -> None:
        delete_folder(self._client("s3"), *self.pipes_folder(root, run_id))
