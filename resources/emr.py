"""Amazon EMR as a Dagster resource: each stage a step on a transient cluster, through Dagster Pipes
(`PipesEMRClient`, messages through S3), a cluster that always terminates (DESIGN §4).

The cluster ends itself when its one step ends (`KeepJobFlowAliveWhenNoSteps=False`, `ActionOnFailure=
TERMINATE_CLUSTER`); on any failure or cancel of the Dagster step, `terminate_job_flows` runs in a `finally`
as well, so no failure path leaves a cluster running. Every setting is checked before a cluster starts.
"""

from __future__ import annotations

import gzip
import re
import time
from typing import Any

import boto3
import dagster as dg
from botocore.exceptions import ClientError
from dagster_aws.pipes import PipesEMRClient
from dagster_aws.pipes.clients.utils import emr_inject_pipes_env_vars

from resources.pipes_messages import RootPrefixedS3MessageReader
from resources.stage_results import StageResult, failures_in
from teem_assets.data_root import DataRoot
from teem_assets.stages.entry import REQUEST_EXTRA
from teem_assets.stages.request import StageRequest
from teem_assets.unload.location import split_s3

RELEASE = re.compile(r"^emr-(\d+)\.(\d+)\.(\d+)$")
# Spark 3.5 with Iceberg 1.x: what the project's local Spark is pinned to (DESIGN §4).
OLDEST_MAJOR_RELEASE = 7
# The releases the stages are known to run on, with the Spark and Iceberg they ship (AWS's release notes); each
# step's materializations record the versions it ran on (`spark_version`, `iceberg_version`).
TESTED_RELEASES = {"emr-7.12.0": "Spark 3.5.6, Iceberg 1.10.0"}
# Where the bootstrap action unpacks the archive `teem package` built (teem_assets/packaging.py).
CLUSTER_HOME = "/home/hadoop/teem"
FAILED_STEP_STATES = {"FAILED", "CANCELLED", "INTERRUPTED"}
STDERR_LINES = 30  # of a failed step's stderr, in the step's error
# numba caches the reader's compiled scanner beside its source, in the archive's folder, which the users YARN
# runs executors as cannot write: the driver (a step, as hadoop) caches in its home, each executor in its
# container's own working folder.
NUMBA_DRIVER = {"NUMBA_CACHE_DIR": "/home/hadoop/.cache/teem-numba"}
NUMBA_EXECUTORS = {"spark.executorEnv.NUMBA_CACHE_DIR": "./numba-cache"}


class EmrSettingError(ValueError):
    """A setting of the EMR resource that would fail the cluster, found before one is started."""


MANAGED_POLICY_TAG = "for-use-with-amazon-emr-managed-policies"


def console_url(region: str, cluster_id: str) -> str:
    return f"https://{region}.console.aws.amazon.com/emr/home?region={region}#/clusterDetails/{cluster_id}"


def merge_configurations(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EMR configurations merged by classification, nested ones too; `extra`'s properties win.
    (`dagster_aws`'s own merge keeps only one side's properties of a shared classification: DESIGN §11.)"""
    merged = [dict(c) for c in base]
    for item in extra:
        same = next((c for c in merged if c.get("Classification") == item.get("Classification")), None)
        if same is None:
            merged.append(dict(item))
            continue
        same["Properties"] = {**same.get("Properties", {}), **item.get("Properties", {})}
        inner = merge_configurations(same.get("Configurations", []), item.get("Configurations", []))
        if inner:
            same["Configurations"] = inner
    return merged


class TransientEMRClient(PipesEMRClient):
    """PipesEMRClient that fails fast on a failed step, terminates the cluster on every way out but a clean
    end, and reports the cluster's state reason and instance-hours with its id and console link."""

    def __init__(
        self,
        message_reader: dg.PipesMessageReader,
        client: Any,
        poll_seconds: float,
        s3: Any = None,
        stderr_wait_seconds: float = 0,
    ) -> None:
        super().__init__(message_reader=message_reader, client=client, forward_termination=True)
        self.poll_seconds = poll_seconds
        self.s3, self.stderr_wait_seconds = s3, stderr_wait_seconds
        self.cluster_id: str | None = None
        self._ended_cleanly = False

    def run(self, *, context: Any, run_job_flow_params: Any, extras: dict[str, Any] | None = None) -> Any:
        try:
            return super().run(context=context, run_job_flow_params=run_job_flow_params, extras=extras)
        finally:
            if self.cluster_id is not None and not self._ended_cleanly:
                context.log.warning(f"terminating EMR cluster {self.cluster_id}")
                self.client.terminate_job_flows(JobFlowIds=[self.cluster_id])

    def _enrich_params(self, session: Any, params: Any) -> Any:
        ours = params.pop("Configurations", [])
        params = super()._enrich_params(session, params)
        params["Configurations"] = merge_configurations(
            emr_inject_pipes_env_vars(session, [], emr_flavor="standard"), ours
        )
        return params

    def _start(self, context: Any, session: Any, params: Any) -> Any:
        response = super()._start(context, session, params)
        self.cluster_id = response["JobFlowId"]
        context.log.info(f"EMR cluster {self.cluster_id}: {console_url(self.client.meta.region_name, self.cluster_id)}")
        return response

    def _wait_for_completion(self, context: Any, response: Any) -> Any:
        cluster_id = response["JobFlowId"]
        while True:
            cluster = self.client.describe_cluster(ClusterId=cluster_id)
            status = cluster["Cluster"]["Status"]
            steps = self.client.list_steps(ClusterId=cluster_id)["Steps"]
            failed = [s for s in steps if s["Status"]["State"] in FAILED_STEP_STATES]
            where = f"EMR cluster {cluster_id} ({console_url(self.client.meta.region_name, cluster_id)})"
            if any(s["Status"]["State"] != "CANCELLED" for s in failed):
                step = next(s for s in failed if s["Status"]["State"] != "CANCELLED")
                raise dg.Failure(f"{where}: {_describe_step(step)}{self._stderr_tail(cluster['Cluster'], step)}")
            if (
                failed
                or status["State"] == "TERMINATED_WITH_ERRORS"
                or (status["State"] == "TERMINATED" and any(s["Status"]["State"] != "COMPLETED" for s in steps))
            ):
                # The cluster itself failed (a bootstrap action, capacity, a setting) and cancelled its step: its
                # own reason says why, and a retry would start another cluster that fails the same way.
                raise dg.Failure(
                    f"{where} {status['State']}: {_reason(status)}; its step never ran", allow_retries=False
                )
            if status["State"] == "TERMINATED":
                self._ended_cleanly = True
                return cluster
            time.sleep(self.poll_seconds)

    def _stderr_tail(self, cluster: dict[str, Any], step: dict[str, Any]) -> str:
        """The last lines of the failed step's stderr, which EMR copies under the cluster's LogUri shortly after
        the step ends (waited for up to stderr_wait_seconds); where to find it when it is not there yet."""
        log_uri = cluster.get("LogUri")
        if not log_uri or self.s3 is None:
            return ""
        bucket, prefix = split_s3("s3://" + log_uri.split("://", 1)[1])
        key = f"{prefix.rstrip('/')}/{cluster['Id']}/steps/{step['Id']}/stderr.gz".lstrip("/")
        deadline = time.monotonic() + self.stderr_wait_seconds
        while True:
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                break
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code not in ("NoSuchKey", "404"):  # the step's own failure stays the error, whatever S3 says
                    return f"; its stderr at s3://{bucket}/{key} could not be read ({code})"
            if time.monotonic() >= deadline:
                return f"; its stderr will be at s3://{bucket}/{key}"
            time.sleep(min(5.0, self.poll_seconds))
        lines = gzip.decompress(body).decode("utf-8", "replace").rstrip().splitlines()[-STDERR_LINES:]
        return f"\nthe last {len(lines)} lines of its stderr (s3://{bucket}/{key}):\n" + "\n".join(lines)

    def _read_application_logs(self, context: Any, session: Any, response: Any) -> None:
        try:
            super()._read_application_logs(context, session, response)
        except KeyError:  # dagster_aws indexes `Contents`, which an empty S3 listing does not have
            context.log.warning(f"no application logs of EMR cluster {response['Cluster']['Id']} under its LogUri")

    def _extract_dagster_metadata(self, response: Any) -> Any:
        metadata = dict(super()._extract_dagster_metadata(response))
        cluster = response["Cluster"]
        metadata["AWS EMR State Reason"] = _reason(cluster["Status"])
        metadata["AWS EMR Normalized Instance Hours"] = int(cluster.get("NormalizedInstanceHours", 0))
        return metadata


def _reason(status: dict[str, Any]) -> str:
    reason = status.get("StateChangeReason", {})
    return f"{reason.get('Code', '')}: {reason.get('Message', '')}".strip(": ") or status["State"]


def _describe_step(step: dict[str, Any]) -> str:
    details = step["Status"].get("FailureDetails", {})
    where = f" (log {details['LogFile']})" if details.get("LogFile") else ""
    why = (
        details.get("Message")
        or details.get("Reason")
        or step["Status"].get("StateChangeReason", {}).get("Message")
        or "no reason given"
    )
    return f"step {step['Name']!r} {step['Status']['State']}: {why}{where}"


class EmrResource(dg.ConfigurableResource):
    """A transient EMR cluster per stage. Settings come from TEEM_EMR_* (README); AWS credentials only from
    AWS's default chain (profile, SSO, instance role), never from here."""

    release_label: str = "emr-7.12.0"
    untested_release: bool = False  # a release outside TESTED_RELEASES, on the user's own word
    master_instance_type: str = "m6i.xlarge"
    core_instance_type: str = "m6i.2xlarge"
    core_instance_count: int = 2
    subnet_id: str | None = None
    service_role: str = "EMR_DefaultRole_V2"  # with AmazonEMRServicePolicy_v2, AWS's current default
    instance_profile: str = "EMR_EC2_DefaultRole"
    log_uri: str | None = None
    tags: dict[str, str] = {}  # noqa: RUF012 - pydantic copies field defaults
    # After the one that installs the archive: [{"name": ..., "path": "s3://...", "args": [...]}]
    bootstrap_actions: list[dict[str, Any]] = []  # noqa: RUF012
    spark_conf: dict[str, str] = {}  # noqa: RUF012
    # EMR's own Iceberg (the Glue catalog itself is the data root's, set by each stage from its request)
    iceberg_conf: dict[str, str] = {"iceberg.enabled": "true"}  # noqa: RUF012
    archive_uri: str | None = None  # built and uploaded by `teem package`
    messages_bucket: str | None = None  # Dagster Pipes' messages; default: the data root's bucket
    cluster_python: str = "python3.11"
    poll_seconds: float = 30.0
    stderr_wait_seconds: float = 120.0  # how long a failed step's stderr is waited for, to show its last lines
    # A step past this is killed, and the cluster with it (ActionOnFailure): TEEM_MAX_RUNTIME_SECONDS, so that a
    # hung step ends even when the run worker that would terminate the cluster is gone.
    step_timeout_seconds: int = 21600
    region: str | None = None
    aws_endpoint_url: str | None = None  # every service's, unless its own is set
    s3_endpoint_url: str | None = None
    emr_endpoint_url: str | None = None

    def _client(self, service: str) -> Any:
        own = {"s3": self.s3_endpoint_url, "emr": self.emr_endpoint_url}.get(service)
        endpoint = own or self.aws_endpoint_url
        options = {k: v for k, v in (("region_name", self.region), ("endpoint_url", endpoint)) if v}
        return boto3.client(service, **options)

    def bootstrap_script_uri(self) -> str:
        return f"{self.archive_uri}.bootstrap.sh"

    def validate(self, root: DataRoot) -> None:
        """Every setting a cluster would fail on, checked against AWS before one is started."""
        if not root.is_s3:
            raise EmrSettingError(f"TEEM_ROOT is {root.root!r}: an EMR cluster reads and writes the data root on S3")
        if not self.subnet_id:
            raise EmrSettingError("subnet_id (TEEM_EMR_SUBNET_ID) is not set: the cluster's VPC subnet")
        match = RELEASE.match(self.release_label)
        if not match or int(match.group(1)) < OLDEST_MAJOR_RELEASE:
            raise EmrSettingError(
                f"release_label (TEEM_EMR_RELEASE_LABEL) {self.release_label!r}: an emr-7.x.y release is needed "
                "(Spark 3.5 and Iceberg, as the project's local Spark)"
            )
        if self.release_label not in TESTED_RELEASES and not self.untested_release:
            tested = "; ".join(f"{label} ({ships})" for label, ships in TESTED_RELEASES.items())
            raise EmrSettingError(
                f"release_label (TEEM_EMR_RELEASE_LABEL) {self.release_label!r} is not a release the stages were "
                f"tested on: {tested}. To run on it anyway, set TEEM_EMR_UNTESTED_RELEASE=true"
            )
        if self.release_label not in self._release_labels():
            raise EmrSettingError(
                f"release_label (TEEM_EMR_RELEASE_LABEL) {self.release_label!r} is not an EMR release in "
                f"{self._client('emr').meta.region_name}"
            )
        if self.log_uri and not self.log_uri.startswith("s3://"):
            raise EmrSettingError(f"log_uri (TEEM_EMR_LOG_URI) {self.log_uri!r} is not an s3:// URI")
        if not self.archive_uri:
            raise EmrSettingError("archive_uri (TEEM_EMR_ARCHIVE_URI) is not set: run `teem package --upload URI`")
        for uri in (self.archive_uri, self.bootstrap_script_uri()):
            if not self._exists(uri):
                raise EmrSettingError(
                    f"archive_uri (TEEM_EMR_ARCHIVE_URI): {uri} does not exist; run `teem package --upload "
                    f"{self.archive_uri}`"
                )

    def _release_labels(self) -> set[str]:
        client, labels, token = self._client("emr"), set(), None
        while True:
            page = client.list_release_labels(**({"NextToken": token} if token else {}))
            labels.update(page.get("ReleaseLabels", []))
            token = page.get("NextToken")
            if not token:
                return labels

    def _exists(self, uri: str) -> bool:
        bucket, key = split_s3(uri)
        try:
            self._client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def logs_at(self, root: DataRoot) -> str:
        """Where the cluster keeps its logs: TEEM_EMR_LOG_URI, else under the data root."""
        return self.log_uri or f"{root.root.rstrip('/')}/logs/emr/"

    def job_flow(self, request: StageRequest, run_id: str, log_uri: str) -> dict[str, Any]:
        """The `run_job_flow` request of one stage (Dagster Pipes adds its environment and tags to it)."""
        python = self.cluster_python
        deadline = ["timeout", "--kill-after=60", str(self.step_timeout_seconds)]
        submit = [*deadline, "spark-submit", "--deploy-mode", "client"]
        for key, value in {"spark.pyspark.python": python, "spark.pyspark.driver.python": python}.items():
            submit += ["--conf", f"{key}={value}"]
        step = {
            "Name": f"teem {request.stage} {','.join(request.tables)}",
            "ActionOnFailure": "TERMINATE_CLUSTER",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [*submit, f"{CLUSTER_HOME}/teem_stage.py"]},
        }
        install = {
            "Name": "install teem-pipelines",
            "ScriptBootstrapAction": {"Path": self.bootstrap_script_uri(), "Args": [self.archive_uri, python]},
        }
        extra_actions = [
            {"Name": a["name"], "ScriptBootstrapAction": {"Path": a["path"], "Args": list(a.get("args", []))}}
            for a in self.bootstrap_actions
        ]
        # boto3 on the nodes reads no region from instance metadata: pyiceberg's Glue client needs it named
        cluster_region = self._client("emr").meta.region_name
        region = {"AWS_REGION": cluster_region, "AWS_DEFAULT_REGION": cluster_region}
        # The v2 managed policies allow RunJobFlow and act only on clusters carrying this tag
        tags = {"teem:stage": request.stage, MANAGED_POLICY_TAG: "true", **self.tags}
        params: dict[str, Any] = {
            "Name": f"teem-{request.stage}-{run_id[:8]}",
            "ReleaseLabel": self.release_label,
            "Applications": [{"Name": "Spark"}],
            "Instances": {
                "InstanceGroups": [
                    {
                        "Name": "primary",
                        "InstanceRole": "MASTER",
                        "InstanceType": self.master_instance_type,
                        "InstanceCount": 1,
                    },
                    {
                        "Name": "core",
                        "InstanceRole": "CORE",
                        "InstanceType": self.core_instance_type,
                        "InstanceCount": self.core_instance_count,
                    },
                ],
                "Ec2SubnetId": self.subnet_id,
                "KeepJobFlowAliveWhenNoSteps": False,
                "TerminationProtected": False,
            },
            "Steps": [step],
            "BootstrapActions": [install, *extra_actions],
            "Configurations": [
                {"Classification": "spark-defaults", "Properties": {**NUMBA_EXECUTORS, **self.spark_conf}},
                {"Classification": "iceberg-defaults", "Properties": dict(self.iceberg_conf)},
                {
                    "Classification": "spark-env",
                    "Configurations": [
                        {
                            "Classification": "export",
                            "Properties": {"PYSPARK_PYTHON": python, "TZ": "UTC", **NUMBA_DRIVER, **region},
                        }
                    ],
                },
            ],
            "JobFlowRole": self.instance_profile,
            "ServiceRole": self.service_role,
            "VisibleToAllUsers": True,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            "LogUri": log_uri,
        }
        return params

    def run_stage(
        self, context: dg.AssetExecutionContext, request: StageRequest, root: DataRoot
    ) -> tuple[list[StageResult], list[str]]:
        """The stage's results, and what it could not do, from one transient cluster."""
        self.validate(root)
        root_bucket, root_prefix = split_s3(root.root)
        bucket = self.messages_bucket or root_bucket
        prefix = root_prefix if bucket == root_bucket else ""
        reader = RootPrefixedS3MessageReader(prefix=prefix, bucket=bucket, client=self._client("s3"), interval=5)
        client = TransientEMRClient(
            reader, self._client("emr"), self.poll_seconds, self._client("s3"), self.stderr_wait_seconds
        )
        invocation = client.run(
            context=context,
            run_job_flow_params=self.job_flow(request, context.run.run_id, self.logs_at(root)),  # type: ignore[arg-type]
            extras={REQUEST_EXTRA: request.to_json()},
        )
        results = invocation.get_results(implicit_materializations=False)  # a table it could not do stays undone
        return list(results), failures_in(invocation.get_custom_messages())
