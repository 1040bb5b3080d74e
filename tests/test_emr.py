"""EMR through Dagster Pipes on moto's AWS: the cluster request carries every setting, a failed step and a run
cancelled from Dagster both end with the cluster terminated, bad settings fail before any cluster starts, and
no credential reaches the request, the logs or the metadata."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pyspark
import pytest
from dagster_pipes import decode_param
from dagster_ui import dagster_dev
from emr_world import ARCHIVE_URI, CANARY_KEY_ID, CANARY_SECRET, REGION, moto_aws
from servers import wait_for

from resources.emr import EmrResource, EmrSettingError
from resources.spark import SparkResource
from resources.spark_submit import spark_submit_path
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.catalogue import DIMENSIONS
from teem_assets.settings import Settings
from teem_assets.spark_session import project_jars
from teem_assets.stages.entry import DRIVER_SCRIPT
from teem_assets.stages.request import StageRequest

# The Iceberg runtime jar dev.sh installed, by its name (iceberg-spark-runtime-3.5_2.12-<version>.jar)
ICEBERG_VERSION = next(Path(j).stem.rsplit("-", 1)[1] for j in project_jars() if "iceberg-spark-runtime" in j)
# The snapshot conversion as the code location makes it, its metadata from the default settings.
parquet_snapshots = parquet_assets(Placement.of(Settings()))[0]

SETTINGS = {
    "release_label": "emr-7.12.0",
    "master_instance_type": "m6i.xlarge",
    "core_instance_type": "r6i.2xlarge",
    "core_instance_count": 3,
    "subnet_id": "subnet-0teem1234",
    "service_role": "TeemEmrService",
    "instance_profile": "TeemEmrInstance",
    "log_uri": "s3://teem-logs/emr/",
    "tags": {"team": "data", "cost-center": "analytics"},
    "bootstrap_actions": [{"name": "corporate certificates", "path": "s3://teem-artifacts/certs.sh", "args": ["-q"]}],
    "spark_conf": {"spark.executor.memory": "12g", "spark.sql.shuffle.partitions": "400"},
    "archive_uri": ARCHIVE_URI,
    "poll_seconds": 0.2,
    "step_timeout_seconds": 5400,
    "stderr_wait_seconds": 10,
}

# Every other secret setting, with a canary value: none may reach the cluster request or the events.
SECRET_SETTINGS = {
    "TEEM_POSTGRES_URL": "postgresql://teem:pg-canary-pw@db.internal/analytics",
    "TEEM_SMTP_PASSWORD": "smtp-canary-pw",
    "TEEM_SLACK_TOKEN": "xoxb-slack-canary",
}
CANARIES = (CANARY_KEY_ID, CANARY_SECRET, "pg-canary-pw", "smtp-canary-pw", "xoxb-slack-canary")


@pytest.fixture
def aws(monkeypatch):
    with moto_aws() as aws:
        for name, value in (("AWS_ENDPOINT_URL", aws.endpoint), ("AWS_ACCESS_KEY_ID", CANARY_KEY_ID),
                            ("AWS_SECRET_ACCESS_KEY", CANARY_SECRET), ("AWS_DEFAULT_REGION", REGION),
                            ("AWS_REGION", REGION)):  # fmt: skip
            monkeypatch.setenv(name, value)
        for name, value in SECRET_SETTINGS.items():  # in the environment, where a careless request would copy them
            monkeypatch.setenv(name, value)
        # moto writes no step logs: Pipes' log readers would wait a minute for them at every run's end
        monkeypatch.setattr("dagster._core.pipes.utils.WAIT_FOR_LOGS_TIMEOUT", 1)
        yield aws


def _resources(aws, **changes) -> dict:
    emr = EmrResource(**{**SETTINGS, **changes}, region=REGION, aws_endpoint_url=aws.endpoint)
    storage = StorageResource(root="s3://teem/root", aws_endpoint_url=aws.endpoint, aws_region=REGION)
    return {"spark": SparkResource(where="emr", emr=emr), "storage": storage, "thresholds": CheckThresholds()}


class Materializing(threading.Thread):
    """parquet/dim_* (or `assets`) materialized in the background, as a run's step waits on its cluster."""

    def __init__(self, resources: dict, assets: list | None = None) -> None:
        super().__init__(daemon=True)
        self.resources, self.result, self.assets = resources, None, assets or [parquet_snapshots]

    def run(self) -> None:
        self.result = dg.materialize(self.assets, resources=self.resources, raise_on_error=False)

    def finish(self) -> dg.ExecuteInProcessResult:
        self.join(120)
        assert not self.is_alive(), "the step did not end after its cluster's step failed"
        return self.result


def _user_error(result: dg.ExecuteInProcessResult):
    """The error the step raised, inside Dagster's wrapper of it."""
    error = result.get_step_failure_events()[0].event_specific_data.error
    return error.cause or error


def _objects_in(aws) -> list[str]:
    """Every object of every bucket on moto's S3, as text."""
    s3 = aws.client("s3")
    texts = []
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                texts.append(f"{item['Key']}: {body.decode('utf-8', 'replace')}")
    return texts


def _by_classification(configurations: list[dict]) -> dict[str, dict]:
    return {c["Classification"]: c for c in configurations}


def test_the_cluster_request_carries_every_setting_and_a_failed_step_terminates_it(aws):
    run = Materializing(_resources(aws))
    run.start()
    cluster_id = aws.wait_for_cluster()
    emr = aws.client("emr")
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.12.0"
    assert cluster["Ec2InstanceAttributes"]["Ec2SubnetId"] == "subnet-0teem1234"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "TeemEmrInstance"
    assert cluster["ServiceRole"] == "TeemEmrService"
    assert cluster["LogUri"] == "s3://teem-logs/emr/"
    assert cluster["AutoTerminate"] is True  # KeepJobFlowAliveWhenNoSteps=False
    assert cluster["TerminationProtected"] is False
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert {"team": "data", "cost-center": "analytics", "teem:stage": "convert"}.items() <= tags.items()
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"  # what the v2 managed policies require

    configurations = _by_classification(cluster["Configurations"])
    spark_defaults = configurations["spark-defaults"]["Properties"]
    assert spark_defaults["spark.executor.memory"] == "12g"  # ours and Pipes' merged, neither lost
    assert spark_defaults["spark.sql.shuffle.partitions"] == "400"
    assert "spark.yarn.appMasterEnv.DAGSTER_PIPES_CONTEXT" in spark_defaults
    assert configurations["iceberg-defaults"]["Properties"] == {"iceberg.enabled": "true"}
    export = _by_classification(configurations["spark-env"]["Configurations"])["export"]["Properties"]
    assert export["PYSPARK_PYTHON"] == "python3.11" and export["TZ"] == "UTC"
    assert export["AWS_REGION"] == export["AWS_DEFAULT_REGION"] == REGION  # the nodes' boto3 finds none itself
    # numba's cache where each process's user can write: the driver's home, the executor's container
    assert export["NUMBA_CACHE_DIR"] == "/home/hadoop/.cache/teem-numba"
    assert spark_defaults["spark.executorEnv.NUMBA_CACHE_DIR"] == "./numba-cache"
    pipes_context = decode_param(export["DAGSTER_PIPES_CONTEXT"])["data"]  # injected directly
    request = StageRequest.from_json(pipes_context["extras"]["request"])
    assert (request.stage, request.tables, request.batches) == ("convert", [t.name for t in DIMENSIONS], ["snapshot"])
    assert request.root["root"] == "s3://teem/root"
    messages = decode_param(export["DAGSTER_PIPES_MESSAGES"])
    assert messages["bucket"] == "teem" and messages["key_prefix"].startswith("root/pipes/")  # under the root

    groups = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    assert sorted((g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups) == [
        ("CORE", "r6i.2xlarge", 3),
        ("MASTER", "m6i.xlarge", 1),
    ]
    actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [(a["Name"], a["ScriptPath"], a["Args"]) for a in actions] == [
        ("install teem-pipelines", f"{ARCHIVE_URI}.bootstrap.sh", [ARCHIVE_URI, "python3.11"]),
        ("corporate certificates", "s3://teem-artifacts/certs.sh", ["-q"]),
    ]
    [step] = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert step["Config"]["Jar"] == "command-runner.jar"
    # a deadline of its own: a hung step ends, and the cluster with it, though no run worker is left to end it
    assert step["Config"]["Args"][:6] == [
        "timeout",
        "--kill-after=60",
        "5400",
        "spark-submit",
        "--deploy-mode",
        "client",
    ]
    assert step["Config"]["Args"][-1] == "/home/hadoop/teem/teem_stage.py"

    # EMR copies the step's stderr under the LogUri once it ended: its last lines are the step's error
    stderr = [f"26/12/04 03:00:{n:02} INFO SparkContext: line {n}" for n in range(40)]
    stderr.append("pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] dim_space")
    key = f"emr/{cluster_id}/steps/{step['Id']}/stderr.gz"
    aws.client("s3").put_object(Bucket="teem-logs", Key=key, Body=gzip.compress("\n".join(stderr).encode()))
    aws.fail_step(cluster_id, "the driver exited with code 1")
    result = run.finish()
    assert not result.success
    assert aws.cluster_state(cluster_id) == "TERMINATED"
    assert tags["dagster/run-id"] == result.run_id  # Pipes' tags: the cluster names its Dagster run
    failure = _user_error(result).message
    assert cluster_id in failure and "FAILED: the driver exited with code 1" in failure
    assert f"the last 30 lines of its stderr (s3://teem-logs/{key}):" in failure
    assert failure.rstrip().endswith("\n".join(stderr[-30:])) and stderr[-31] not in failure

    seen = json.dumps([cluster, groups, actions, step], default=str)
    seen += "\n".join(str(e.message) for e in result.all_events)
    seen += json.dumps([str(e.event_specific_data) for e in result.all_events], default=str)
    seen += "\n".join(_objects_in(aws))  # the Pipes messages and anything else the run wrote to S3
    assert [secret for secret in CANARIES if secret in seen] == []


def test_a_cluster_that_fails_in_bootstrap_says_why_and_is_not_started_again(aws):
    """migrated/dim_* (whose step retries a failed commit): the cluster's own reason, one cluster only."""
    migrated = migrated_assets(Placement.of(Settings()))[0]
    run = Materializing(_resources(aws), [migrated])
    run.start()
    cluster_id = aws.wait_for_cluster()
    aws.fail_bootstrap(cluster_id, "On the master instance (i-0teem), bootstrap action 1 returned a non-zero code")
    result = run.finish()
    failure = _user_error(result).message
    assert cluster_id in failure and "TERMINATED_WITH_ERRORS" in failure
    assert "bootstrap action 1 returned a non-zero code" in failure and "no reason given" not in failure
    assert [c["Id"] for c in aws.client("emr").list_clusters()["Clusters"]] == [cluster_id]  # no retry's cluster


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"subnet_id": None}, "subnet_id (TEEM_EMR_SUBNET_ID)"),
        ({"release_label": "emr-7.0.0"}, "'emr-7.0.0' is not a release the stages were tested on: emr-7.12.0 (Spark"),
        (
            {"release_label": "emr-7.99.0", "untested_release": True},
            "release_label (TEEM_EMR_RELEASE_LABEL) 'emr-7.99.0' is not an EMR release",
        ),
        ({"release_label": "emr-6.15.0"}, "release_label (TEEM_EMR_RELEASE_LABEL) 'emr-6.15.0': an emr-7.x.y"),
        ({"archive_uri": "s3://teem-artifacts/packages/missing.tar.gz"}, "missing.tar.gz does not exist"),
        ({"archive_uri": None}, "archive_uri (TEEM_EMR_ARCHIVE_URI) is not set"),
    ],
)
def test_bad_settings_fail_before_any_cluster_starts(aws, changes, setting):
    result = dg.materialize([parquet_snapshots], resources=_resources(aws, **changes), raise_on_error=False)
    assert not result.success
    error = _user_error(result)
    assert error.cls_name == EmrSettingError.__name__
    assert setting in error.message
    assert aws.client("emr").list_clusters()["Clusters"] == []


def test_a_folder_root_is_refused_for_emr(aws, tmp_path):
    resources = {**_resources(aws), "storage": StorageResource(root=str(tmp_path))}
    result = dg.materialize([parquet_snapshots], resources=resources, raise_on_error=False)
    assert "TEEM_ROOT" in _user_error(result).message
    assert aws.client("emr").list_clusters()["Clusters"] == []


def _environment_of(cluster: dict) -> dict[str, str]:
    """The variables EMR exports to a step's spark-submit (the spark-env classification)."""
    configurations = _by_classification(cluster["Configurations"])
    return _by_classification(configurations["spark-env"]["Configurations"])["export"]["Properties"]


@pytest.mark.slow
def test_the_driver_started_as_emr_starts_it_reports_back_through_s3(aws, sample_root, tmp_path):
    s3 = aws.client("s3")
    for path in sorted((sample_root / "csv").rglob("*")):
        if path.is_file() and "/snapshot/" in path.as_posix():
            s3.upload_file(str(path), "teem", f"root/{path.relative_to(sample_root).as_posix()}")
    run = Materializing(_resources(aws))
    run.start()
    cluster_id = aws.wait_for_cluster()
    emr = aws.client("emr")
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    [step] = emr.list_steps(ClusterId=cluster_id)["Steps"]
    # The step's own spark-submit, with this machine's Python, jars and a local master for the cluster's
    driver = tmp_path / "teem_stage.py"
    driver.write_text(DRIVER_SCRIPT)
    args = step["Config"]["Args"]
    deadline, at = args[: args.index("spark-submit")], args.index("spark-submit")
    arguments = [a.replace("python3.11", sys.executable) for a in args[at + 1 : -1]]
    jars = ",".join(project_jars())
    command = [*deadline, spark_submit_path(), "--master", "local[2]", "--jars", jars, *arguments, str(driver)]
    cluster_paths = {"PYSPARK_PYTHON": sys.executable, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    exported = {**_environment_of(cluster), **cluster_paths}
    finished = subprocess.run(command, env={**os.environ, **exported}, cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-4000:]
    messages = decode_param(exported["DAGSTER_PIPES_MESSAGES"])
    assert s3.list_objects_v2(Bucket="teem", Prefix=f"{messages['key_prefix']}/")["KeyCount"] > 0
    aws.finish_cluster(cluster_id, instance_hours=24)

    result = run.finish()
    assert result.success
    assert s3.list_objects_v2(Bucket="teem", Prefix=f"{messages['key_prefix']}/")["KeyCount"] == 0  # read, removed
    emr_metadata = {
        "AWS EMR Cluster ID": cluster_id,
        "AWS EMR State Reason": "Steps completed",
        "AWS EMR Normalized Instance Hours": 24,
    }
    in_process = _in_process_snapshots(sample_root, tmp_path / "local")
    materialized = result.get_asset_materialization_events()
    assert len(materialized) == len(DIMENSIONS)
    for event in materialized:
        materialization = event.step_materialization_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        key = materialization.asset_key.to_user_string()
        assert emr_metadata.items() <= metadata.items()
        assert metadata["AWS EMR Cluster"].endswith(f"#/clusterDetails/{cluster_id}")
        # the engine the step ran on: here this machine's Spark and Iceberg jar, on EMR the release's own
        assert (metadata["spark_version"], metadata["iceberg_version"]) == (pyspark.__version__, ICEBERG_VERSION)
        for name in ("dagster/row_count", "rows_read", "rows_quarantined", "files", "bytes", "preview"):
            assert metadata[name] == in_process[key][name], (key, name)
        assert metadata["dagster/row_count"] > 0
    checks = result.get_asset_check_evaluations()
    assert sorted(c.asset_key.to_user_string() for c in checks if c.passed) == sorted(in_process)


def _in_process_snapshots(sample_root: Path, root: Path) -> dict[str, dict[str, object]]:
    shutil.copytree(sample_root / "csv", root / "csv")
    resources = {"spark": SparkResource(), "storage": StorageResource(root=str(root)), "thresholds": CheckThresholds()}
    result = dg.materialize([parquet_snapshots], resources=resources)
    return {
        e.step_materialization_data.materialization.asset_key.to_user_string(): {
            k: v.value for k, v in e.step_materialization_data.materialization.metadata.items()
        }
        for e in result.get_asset_materialization_events()
    }


LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
} }
"""
TERMINATE = "mutation($id: String!) { terminateRun(runId: $id) { __typename ... on PythonError { message } } }"
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
LOGS = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
    __typename ... on MessageEvent { message } } } } }"""


@pytest.mark.slow
def test_a_run_cancelled_from_dagster_terminates_its_cluster(aws, tmp_path, postgres_url):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "TEEM_ENV": "aws",
        "TEEM_ROOT": "s3://teem/root",
        "TEEM_HOME": str(tmp_path / "teem"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_EMR_SUBNET_ID": SETTINGS["subnet_id"],
        "TEEM_EMR_ARCHIVE_URI": ARCHIVE_URI,
        "TEEM_EMR_POLL_SECONDS": "0.5",
        "TEEM_MAX_RUNTIME_SECONDS": "7200",
    }
    with dagster_dev(env, tmp_path) as (graphql, location):
        repository = location["locationOrLoadError"]["repositories"][0]
        selector = {"repositoryLocationName": location["name"], "repositoryName": repository["name"]}
        launched = graphql(LAUNCH, params={"selector": {**selector, "jobName": "snapshot_job"}})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        cluster_id = aws.wait_for_cluster(timeout=240)
        assert graphql(TERMINATE, id=run_id)["terminateRun"]["__typename"] == "TerminateRunSuccess"

        def ended() -> str | None:
            status = graphql(STATUS, id=run_id)["runOrError"]["status"]
            return status if status in ("CANCELED", "FAILURE", "SUCCESS") else None

        assert wait_for(ended, 240, "the run to end", interval=1) == "CANCELED"
        assert aws.cluster_state(cluster_id) == "TERMINATED"
        cluster = aws.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
        assert cluster["LogUri"] == "s3://teem/root/logs/emr/"  # no TEEM_EMR_LOG_URI: under the root
        [step] = aws.client("emr").list_steps(ClusterId=cluster_id)["Steps"]
        assert step["Config"]["Args"][:3] == ["timeout", "--kill-after=60", "7200"]  # TEEM_MAX_RUNTIME_SECONDS
        messages = [e.get("message", "") for e in graphql(LOGS, id=run_id)["logsForRun"]["events"]]
        assert any(cluster_id in m for m in messages)  # the step said which cluster it started
        assert [secret for secret in CANARIES if any(secret in m for m in messages)] == []
