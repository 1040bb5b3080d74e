"""Amazon EMR as a Dagster resource: one cluster a run, each Spark stage a step on it through Dagster Pipes
(the context and the messages through S3, under the data root), settings checked before a cluster starts
(DESIGN §4). The run's cluster itself: `resources.emr_cluster`."""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
from dagster_aws.pipes import PipesS3ContextInjector

from resources.aws_clients import aws_client
from resources.emr_cluster import ALIVE_STATES, RunCluster
from resources.pipes_messages import RootPrefixedS3MessageReader, delete_folder, run_folder
from resources.s3_objects import s3_object_exists
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
STEP_NAME_LIMIT = 256  # characters, EMR's
# numba caches the reader's compiled scanner beside its source, in the archive's folder, which the users YARN
# runs executors as cannot write: the driver (a step, as hadoop) caches in its home, each executor in its
# container's own working folder.
NUMBA_DRIVER = {"NUMBA_CACHE_DIR": "/home/hadoop/.cache/teem-numba"}
NUMBA_EXECUTORS = {"spark.executorEnv.NUMBA_CACHE_DIR": "./numba-cache"}


class EmrSettingError(ValueError):
    """A setting of the EMR resource that would fail the cluster, found before one is started."""


def check_release(label: str, untested: bool, prefix: str) -> None:
    """An emr-7.x.y release the stages were tested on, or any emr-7 one on the user's word (`untested`);
    `prefix` names the settings (TEEM_EMR, TEEM_EMR_SERVERLESS)."""
    match = RELEASE.match(label)
    if not match or int(match.group(1)) < OLDEST_MAJOR_RELEASE:
        raise EmrSettingError(
            f"release_label ({prefix}_RELEASE_LABEL) {label!r}: an emr-7.x.y release is needed "
            "(Spark 3.5 and Iceberg, as the project's local Spark)"
        )
    if label not in TESTED_RELEASES and not untested:
        tested = "; ".join(f"{each} ({ships})" for each, ships in TESTED_RELEASES.items())
        raise EmrSettingError(
            f"release_label ({prefix}_RELEASE_LABEL) {label!r} is not a release the stages were "
            f"tested on: {tested}. To run on it anyway, set {prefix}_UNTESTED_RELEASE=true"
        )


MANAGED_POLICY_TAG = "for-use-with-amazon-emr-managed-policies"


class EmrResource(dg.ConfigurableResource):
    """One transient EMR cluster a run (`RunCluster`). Settings come from TEEM_EMR_* (README); AWS credentials
    only from AWS's default chain (profile, SSO, instance role), never from here."""

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
    # A step past this is killed (TEEM_MAX_RUNTIME_SECONDS), so that a hung step ends, and the idle cluster after
    # it, even when the run worker that would terminate the cluster is gone.
    step_timeout_seconds: int = 21600
    # EMR ends the cluster once it has run no step this long (AutoTerminationPolicy): after a run worker died. A
    # run whose Dagster steps between two Spark stages take longer starts another cluster for the rest.
    idle_timeout_seconds: int = 900
    # USD an instance-hour by instance type (EC2 on-demand and EMR's price, us-east-1, 2026): the estimated
    # cost each run reports; a type without a rate is reported as such.
    hourly_rates: dict[str, float] = {"m6i.xlarge": 0.24, "m6i.2xlarge": 0.48}  # noqa: RUF012
    region: str | None = None
    aws_endpoint_url: str | None = None  # every service's, unless its own is set
    s3_endpoint_url: str | None = None
    emr_endpoint_url: str | None = None

    def _client(self, service: str) -> Any:
        own = {"s3": self.s3_endpoint_url, "emr": self.emr_endpoint_url}.get(service)
        return aws_client(service, self.region, own, self.aws_endpoint_url)

    def bootstrap_script_uri(self) -> str:
        return f"{self.archive_uri}.bootstrap.sh"

    def digest_uri(self) -> str:
        return f"{self.archive_uri}.sha256"

    def archive_digest(self) -> str:
        """The archive's sha256 as `teem package` wrote it beside it: the bootstrap installs nothing else."""
        bucket, key = split_s3(self.digest_uri())
        text = self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().strip()
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise EmrSettingError(
                f"{self.digest_uri()} holds no sha256; run `teem package --upload {self.archive_uri}`"
            )
        return text

    def validate(self, root: DataRoot) -> None:
        """Every setting a cluster would fail on, checked against AWS before one is started."""
        if not root.is_s3:
            raise EmrSettingError(f"TEEM_ROOT is {root.root!r}: an EMR cluster reads and writes the data root on S3")
        if not self.subnet_id:
            raise EmrSettingError("subnet_id (TEEM_EMR_SUBNET_ID) is not set: the cluster's VPC subnet")
        check_release(self.release_label, self.untested_release, "TEEM_EMR")
        if self.release_label not in self._release_labels():
            raise EmrSettingError(
                f"release_label (TEEM_EMR_RELEASE_LABEL) {self.release_label!r} is not an EMR release in "
                f"{self._client('emr').meta.region_name}"
            )
        if self.log_uri and not self.log_uri.startswith("s3://"):
            raise EmrSettingError(f"log_uri (TEEM_EMR_LOG_URI) {self.log_uri!r} is not an s3:// URI")
        if not self.archive_uri:
            raise EmrSettingError("archive_uri (TEEM_EMR_ARCHIVE_URI) is not set: run `teem package --upload URI`")
        for uri in (self.archive_uri, self.digest_uri(), self.bootstrap_script_uri()):
            if not s3_object_exists(self._client("s3"), uri):
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

    def logs_at(self, root: DataRoot) -> str:
        """Where the cluster keeps its logs: TEEM_EMR_LOG_URI, else under the data root."""
        return self.log_uri or f"{root.root.rstrip('/')}/logs/emr/"

    def job_flow(self, run: dg.DagsterRun, log_uri: str) -> dict[str, Any]:
        """The `run_job_flow` request of a run's cluster: no step of its own, kept up for the run's steps."""
        python = self.cluster_python
        install = {
            "Name": "install teem-pipelines",
            "ScriptBootstrapAction": {
                "Path": self.bootstrap_script_uri(),
                "Args": [str(self.archive_uri), python, self.archive_digest()],
            },
        }
        extra_actions = [
            {"Name": a["name"], "ScriptBootstrapAction": {"Path": a["path"], "Args": list(a.get("args", []))}}
            for a in self.bootstrap_actions
        ]
        # boto3 on the nodes reads no region from instance metadata: pyiceberg's Glue client needs it named
        cluster_region = self._client("emr").meta.region_name
        region = {"AWS_REGION": cluster_region, "AWS_DEFAULT_REGION": cluster_region}
        # The v2 managed policies allow RunJobFlow and act only on clusters carrying this tag
        tags = {"dagster/run-id": run.run_id, "dagster/job": run.job_name, MANAGED_POLICY_TAG: "true", **self.tags}
        return {
            "Name": f"teem-{run.job_name}-{run.run_id[:8]}",
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
                "KeepJobFlowAliveWhenNoSteps": True,
                "TerminationProtected": False,
            },
            "AutoTerminationPolicy": {"IdleTimeout": self.idle_timeout_seconds},
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

    def step(self, request: StageRequest, pipes_env: dict[str, str]) -> dict[str, Any]:
        """One stage as a step: its driver under spark-submit, Dagster Pipes' variables (where its context and
        messages are) set for it alone, a deadline of its own; a failed step leaves the cluster to the run."""
        python = self.cluster_python
        environment = ["env", *(f"{name}={value}" for name, value in sorted(pipes_env.items()))]
        deadline = ["timeout", "--kill-after=60", str(self.step_timeout_seconds)]
        submit = [*deadline, "spark-submit", "--deploy-mode", "client"]
        for key, value in {"spark.pyspark.python": python, "spark.pyspark.driver.python": python}.items():
            submit += ["--conf", f"{key}={value}"]
        return {
            "Name": f"teem {request.stage} {','.join(request.tables)}"[:STEP_NAME_LIMIT],
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": [*environment, *submit, f"{CLUSTER_HOME}/teem_stage.py"],
            },
        }

    def terminate_clusters_of(self, run_id: str) -> list[str]:
        """Terminate the clusters still up that a run started (tag `dagster/run-id`): those of a run whose worker
        died before its end could terminate them. Returns their ids."""
        emr = self._client("emr")
        ended = []
        for page in emr.get_paginator("list_clusters").paginate(ClusterStates=sorted(ALIVE_STATES)):
            for summary in page["Clusters"]:
                tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get("Tags", [])
                if {"Key": "dagster/run-id", "Value": run_id} in tags:
                    ended.append(summary["Id"])
        if ended:
            emr.terminate_job_flows(JobFlowIds=ended)
        return ended

    def pipes_folder(self, root: DataRoot, run_id: str) -> tuple[str, str]:
        """(bucket, folder) of a run's Pipes objects: under the root's prefix in its bucket, else in
        TEEM_EMR_MESSAGES_BUCKET's `pipes/`."""
        root_bucket, root_prefix = split_s3(root.root)
        bucket = self.messages_bucket or root_bucket
        return bucket, run_folder(root_prefix if bucket == root_bucket else "", run_id)

    def delete_pipes_objects_of(self, root: DataRoot, run_id: str) -> None:
        """What a run whose worker was killed left of its Pipes objects."""
        delete_folder(self._client("s3"), *self.pipes_folder(root, run_id))

    def run_cluster(self) -> RunCluster:
        """A run's cluster, not started yet: its first stage starts it."""
        return RunCluster(
            self._client("emr"),
            self._client("s3"),
            self.poll_seconds,
            self.stderr_wait_seconds,
            dict(self.hourly_rates),
        )

    def run_stage(
        self, context: dg.AssetExecutionContext, request: StageRequest, root: DataRoot, cluster: RunCluster
    ) -> tuple[list[StageResult], list[str]]:
        """The stage's results, and what it could not do, from a step on the run's cluster."""
        if cluster.cluster_id is None:
            self.validate(root)  # before the run's first cluster starts
        bucket, folder = self.pipes_folder(root, context.run.run_id)
        cluster.pipes_folders.add((bucket, folder))
        s3 = self._client("s3")
        with dg.open_pipes_session(
            context=context,
            # the context in S3, its key on the step's command: EMR takes 10,240 characters over a step's arguments
            context_injector=PipesS3ContextInjector(bucket=bucket, client=s3, key_prefix=f"{folder}/"),
            message_reader=RootPrefixedS3MessageReader(folder=folder, bucket=bucket, client=s3, interval=5),
            extras={REQUEST_EXTRA: request.to_json()},
        ) as session:
            cluster.ensure(context.log, lambda: self.job_flow(context.run, self.logs_at(root)))
            step = cluster.run_step(context.log, self.step(request, session.get_bootstrap_env_vars()))
        # a table it could not do stays undone: no materialization unless the step reported one
        results = session.get_results(implicit_materializations=False, metadata=cluster.step_metadata(step))
        return list(results), failures_in(session.get_custom_messages())
