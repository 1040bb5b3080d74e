"""EMR through Dagster Pipes on moto's AWS: the cluster request carries every setting, a failed step and a run
cancelled from Dagster both end with the cluster terminated, bad settings fail before any cluster starts, and
no credential reaches the request, the logs or the metadata."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import dagster as dg
import pyspark
import pytest
from aws_calls import ACCOUNT, policy_problems, recording_aws_calls
from conftest import SAMPLE_DAYS
from dagster_helpers import materializations, run_job
from dagster_pipes import PipesMappingParamsLoader, decode_param
from dagster_ui import dagster_dev
from emr_world import (
    ARCHIVE_SHA256,
    ARCHIVE_URI,
    CANARY_KEY_ID,
    CANARY_SECRET,
    REGION,
    PlayingEmr,
    StepRunner,
    moto_aws,
    step_environment,
)
from oracle import newest_by_key
from servers import wait_for
from tables import iceberg_rows

from jobs.batch_jobs import batch_jobs
from jobs.ended_run_clusters import ended_run_clusters_sensors
from resources.emr import EmrResource, EmrSettingError
from resources.spark import SparkResource
from resources.spark_submit import spark_submit_path
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.catalogue import DIMENSIONS, FACTS
from teem_assets.cli import main
from teem_assets.definitions import build_definitions
from teem_assets.settings import Settings
from teem_assets.spark_session import project_jars
from teem_assets.stages import run_stage
from teem_assets.stages.entry import DRIVER_SCRIPT, serve_pipes
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
    "idle_timeout_seconds": 600,
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
        self.instance = dg.DagsterInstance.ephemeral()

    def run(self) -> None:
        self.result = dg.materialize(
            self.assets, resources=self.resources, raise_on_error=False, instance=self.instance
        )

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


@pytest.fixture
def emr_requests():
    """Every EMR request the test's process sends (boto3's default session, which the resource's clients
    come from), as (operation, parameters)."""
    calls: list[tuple[str, dict]] = []

    def record(params: dict, model, **_) -> None:
        calls.append((model.name, json.loads(json.dumps(params, default=str))))

    events = boto3._get_default_session().events
    events.register("provide-client-params.emr", record, unique_id="teem-emr-requests")
    yield calls
    events.unregister("provide-client-params.emr", unique_id="teem-emr-requests")


def test_the_cluster_request_carries_every_setting_and_a_failed_step_terminates_it(aws, emr_requests):
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
    assert cluster["AutoTerminate"] is False  # kept up for the run's later stages; the run ends it
    assert cluster["TerminationProtected"] is False
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    [request] = [params for operation, params in emr_requests if operation == "RunJobFlow"]
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 600}  # moto keeps no policy: the request's
    assert "Steps" not in request
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert {"team": "data", "cost-center": "analytics"}.items() <= tags.items()
    assert tags["dagster/job"] == "__ephemeral_asset_job__"
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"  # what the v2 managed policies require

    configurations = _by_classification(cluster["Configurations"])
    spark_defaults = configurations["spark-defaults"]["Properties"]
    assert spark_defaults["spark.executor.memory"] == "12g"
    assert spark_defaults["spark.sql.shuffle.partitions"] == "400"
    assert configurations["iceberg-defaults"]["Properties"] == {"iceberg.enabled": "true"}
    export = _by_classification(configurations["spark-env"]["Configurations"])["export"]["Properties"]
    assert export["PYSPARK_PYTHON"] == "python3.11" and export["TZ"] == "UTC"
    assert export["AWS_REGION"] == export["AWS_DEFAULT_REGION"] == REGION  # every step's; boto3 finds none there
    # numba's cache where each process's user can write: the driver's home, the executor's container
    assert export["NUMBA_CACHE_DIR"] == "/home/hadoop/.cache/teem-numba"
    assert spark_defaults["spark.executorEnv.NUMBA_CACHE_DIR"] == "./numba-cache"
    assert not [name for name in export if name.startswith("DAGSTER_PIPES")]  # a step's own, not the cluster's

    step = aws.wait_for_step(cluster_id)
    assert step["ActionOnFailure"] == "CONTINUE"  # the cluster stays the run's; the run ends it
    assert step["Config"]["Jar"] == "command-runner.jar"
    args = step["Config"]["Args"]
    pipes = step_environment(args)
    assert sorted(pipes) == ["DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"]
    # a deadline of its own: a hung step ends, and then the idle cluster, though no run worker is left to end it
    command = args[len(pipes) + 1 :]
    assert command[:6] == ["timeout", "--kill-after=60", "5400", "spark-submit", "--deploy-mode", "client"]
    assert command[-1] == "/home/hadoop/teem/teem_stage.py"
    where = decode_param(pipes["DAGSTER_PIPES_CONTEXT"])  # the context in the root's bucket, under the root
    run_folder = f"root/pipes/{tags['dagster/run-id']}/"  # the run's own folder under the root
    assert where["bucket"] == "teem" and where["key"].startswith(run_folder)
    context = json.loads(aws.client("s3").get_object(Bucket="teem", Key=where["key"])["Body"].read())
    request = StageRequest.from_json(context["extras"]["request"])
    assert (request.stage, request.tables, request.batches) == ("convert", [t.name for t in DIMENSIONS], ["snapshot"])
    assert request.root["root"] == "s3://teem/root"
    messages = decode_param(pipes["DAGSTER_PIPES_MESSAGES"])
    assert messages["bucket"] == "teem" and messages["key_prefix"].startswith(run_folder)
    # what a read that failed half-way would leave in the run's folder: gone with the run
    aws.client("s3").put_object(Bucket="teem", Key=f"{run_folder}abandoned/1.json", Body=b"{}")

    groups = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    assert sorted((g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups) == [
        ("CORE", "r6i.2xlarge", 3),
        ("MASTER", "m6i.xlarge", 1),
    ]
    actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [(a["Name"], a["ScriptPath"], a["Args"]) for a in actions] == [
        # the archive's sha256 as the run read it: a node installs that archive or none
        ("install teem-pipelines", f"{ARCHIVE_URI}.bootstrap.sh", [ARCHIVE_URI, "python3.11", ARCHIVE_SHA256]),
        ("corporate certificates", "s3://teem-artifacts/certs.sh", ["-q"]),
    ]

    # EMR copies the step's stderr under the LogUri once it ended: its last lines are the step's error
    stderr = [f"26/12/04 03:00:{n:02} INFO SparkContext: line {n}" for n in range(40)]
    stderr.append("pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] dim_space")
    key = f"emr/{cluster_id}/steps/{step['Id']}/stderr.gz"
    aws.client("s3").put_object(Bucket="teem-logs", Key=key, Body=gzip.compress("\n".join(stderr).encode()))
    aws.fail_step(cluster_id, "the driver exited with code 1")
    result = run.finish()
    assert not result.success
    assert aws.cluster_state(cluster_id) == "TERMINATED"  # by the run's end
    assert tags["dagster/run-id"] == result.run_id  # the cluster names its Dagster run
    failure = _user_error(result).message
    assert cluster_id in failure and "FAILED: the driver exited with code 1" in failure
    assert f"the last 30 lines of its stderr (s3://teem-logs/{key}):" in failure
    assert failure.rstrip().endswith("\n".join(stderr[-30:])) and stderr[-31] not in failure
    assert [k for k in _keys_in(aws, "teem") if "/pipes/" in k] == []  # context and messages removed
    run_tags = run.instance.get_run_by_id(result.run_id).tags
    assert run_tags["teem/emr_clusters"] == cluster_id
    assert run_tags["teem/emr_estimated_cost"] == "unknown: no rate for r6i.2xlarge in TEEM_EMR_HOURLY_RATES"

    seen = json.dumps([cluster, groups, actions, step, emr_requests], default=str)
    seen += "\n".join(str(e.message) for e in result.all_events)
    seen += json.dumps([str(e.event_specific_data) for e in result.all_events], default=str)
    seen += "\n".join(_objects_in(aws))  # anything else the run wrote to S3
    assert [secret for secret in CANARIES if secret in seen] == []


def _keys_in(aws, bucket: str) -> list[str]:
    return [item["Key"] for item in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_cluster_that_fails_in_bootstrap_says_why_and_is_not_started_again(aws):
    """migrated/dim_* (whose step retries a failed commit): the cluster's own reason, one cluster only."""
    migrated = migrated_assets(Placement.of(Settings()))[0]
    run = Materializing(_resources(aws), [migrated])
    run.start()
    cluster_id = aws.wait_for_cluster()
    aws.wait_for_step(cluster_id)
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


def test_an_archive_without_its_sha256_is_refused_before_any_cluster_starts(aws):
    aws.client("s3").delete_object(Bucket="teem-artifacts", Key="packages/teem-cluster.tar.gz.sha256")
    result = dg.materialize([parquet_snapshots], resources=_resources(aws), raise_on_error=False)
    assert f"{ARCHIVE_URI}.sha256 does not exist" in _user_error(result).message
    assert aws.client("emr").list_clusters()["Clusters"] == []


def test_a_folder_root_is_refused_for_emr(aws, tmp_path):
    resources = {**_resources(aws), "storage": StorageResource(root=str(tmp_path))}
    result = dg.materialize([parquet_snapshots], resources=resources, raise_on_error=False)
    assert "TEEM_ROOT" in _user_error(result).message
    assert aws.client("emr").list_clusters()["Clusters"] == []


def _environment_of(cluster: dict) -> dict[str, str]:
    """The variables EMR exports to every step's spark-submit (the spark-env classification)."""
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
    step = aws.wait_for_step(cluster_id)
    # The step's own command (env, timeout, spark-submit), with this machine's Python, jars and a local master
    driver = tmp_path / "teem_stage.py"
    driver.write_text(DRIVER_SCRIPT)
    args = step["Config"]["Args"]
    at = args.index("spark-submit")
    arguments = [a.replace("python3.11", sys.executable) for a in args[at + 1 : -1]]
    jars = ",".join(project_jars())
    command = [*args[:at], spark_submit_path(), "--master", "local[2]", "--jars", jars, *arguments, str(driver)]
    cluster_paths = {"PYSPARK_PYTHON": sys.executable, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    exported = {**_environment_of(cluster), **cluster_paths}
    finished = subprocess.run(command, env={**os.environ, **exported}, cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-4000:]
    messages = decode_param(step_environment(args)["DAGSTER_PIPES_MESSAGES"])
    assert s3.list_objects_v2(Bucket="teem", Prefix=f"{messages['key_prefix']}/")["KeyCount"] > 0
    aws.complete_step(cluster_id, instance_hours=24)

    result = run.finish()
    assert result.success
    assert aws.cluster_state(cluster_id) == "TERMINATED"  # the run ended, and its cluster with it
    assert [k for k in _keys_in(aws, "teem") if "/pipes/" in k] == []  # read, removed
    emr_metadata = {
        "AWS EMR Cluster ID": cluster_id,
        "AWS EMR Step ID": step["Id"],
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
        assert metadata["AWS EMR Step Logs"] == f"s3://teem-logs/emr/{cluster_id}/steps/{step['Id']}/"
        # the engine the step ran on: here this machine's Spark and Iceberg jar, on EMR the release's own
        assert (metadata["spark_version"], metadata["iceberg_version"]) == (pyspark.__version__, ICEBERG_VERSION)
        for name in ("dagster/row_count", "rows_read", "rows_quarantined", "files", "bytes", "preview"):
            assert metadata[name] == in_process[key][name], (key, name)
        assert metadata["dagster/row_count"] > 0
    checks = result.get_asset_check_evaluations()
    assert all(c.passed for c in checks)
    assert sorted((c.asset_key.to_user_string(), c.check_name) for c in checks) == sorted(
        (key, name) for key in in_process for name in ("snapshot_not_shrunk", "no_stale_parts", "catalogue_rules")
    )


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


def test_auto_runs_a_small_run_in_process_and_says_why(aws, sample_root, spark):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="teem-auto")  # a bucket of its own: no other test's S3A client holds it
    uploaded = 0
    for path in sorted((sample_root / "csv").rglob("*")):
        if path.is_file() and "/snapshot/" in path.as_posix():
            s3.upload_file(str(path), "teem-auto", f"root/{path.relative_to(sample_root).as_posix()}")
            uploaded += path.stat().st_size
    resources = _resources(aws)
    resources["spark"] = SparkResource(where="auto", auto_max_bytes=uploaded + 1, emr=resources["spark"].emr)
    resources["storage"] = StorageResource(root="s3://teem-auto/root", aws_endpoint_url=aws.endpoint, aws_region=REGION)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([parquet_snapshots], resources=resources, instance=instance)
    assert aws.client("emr").list_clusters()["Clusters"] == []  # no cluster for a small run
    assert sorted(materializations(result)) == sorted(f"parquet/{t.name}" for t in DIMENSIONS)
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["teem/spark"] == "in-process"
    assert tags["teem/spark_why"] == (
        f"the run's unloads (the snapshots) are {uploaded / 1024**2:.1f} MiB, below TEEM_SPARK_AUTO_MAX_BYTES "
        f"({(uploaded + 1) / 1024**2:.1f} MiB)"
    )


@dg.asset
def worker_killed() -> None:
    raise RuntimeError("the run worker was killed")  # what the run's record says once dead_run_sensor ended it


def test_a_run_that_ended_without_its_worker_has_its_cluster_terminated_by_the_daemon(aws):
    instance = dg.DagsterInstance.ephemeral()
    dead = dg.materialize([worker_killed], instance=instance, raise_on_error=False)
    living = dg.materialize([dg.asset(name="living")(lambda: None)], instance=instance)
    resources = _resources(aws)
    emr = resources["spark"].emr
    left_up = {}
    for result in (dead, living):  # the clusters each run's worker started, as its RunCluster does
        cluster = emr.run_cluster()
        run = instance.get_run_by_id(result.run_id)
        left_up[result.run_id] = cluster.ensure(
            dg.get_dagster_logger(), lambda run=run: emr.job_flow(run, "s3://teem-logs/")
        )

    sensor = {s.name: s for s in ended_run_clusters_sensors(batch_jobs(3600))}["ended_run_clusters_failure"]

    def evaluated(spark: SparkResource) -> str:
        with dg.build_run_status_sensor_context(
            sensor.name, dead.get_run_failure_event(), instance, instance.get_run_by_id(dead.run_id),
            resources={"spark": spark, "storage": resources["storage"]},
        ) as context:  # fmt: skip
            return sensor(context).skip_message

    s3 = aws.client("s3")
    for run_id in left_up:  # a Pipes object each run's killed reader never deleted
        s3.put_object(Bucket="teem", Key=f"root/pipes/{run_id}/0123/1.json", Body=b"{}")
    said = evaluated(resources["spark"])
    assert aws.cluster_state(left_up[dead.run_id]) == "TERMINATED"
    assert aws.cluster_state(left_up[living.run_id]) == "WAITING"  # another run's cluster is that run's
    assert left_up[dead.run_id] in said
    assert [k for k in _keys_in(aws, "teem") if "/pipes/" in k] == [f"root/pipes/{living.run_id}/0123/1.json"]
    assert "no cluster" in evaluated(SparkResource(where="in-process"))  # TEEM_ENV=local: no AWS call at all


def _on_this_machine(spark, fail_first: str | None = None) -> StepRunner:
    """A step's work as the cluster does it: the step's own Pipes variables, the project's driver code
    (`serve_pipes`) on a warm Spark session (the test's), as a long-lived cluster keeps one warm per node.
    `fail_first`: the first step whose name starts with it fails, as a driver that exited 1."""
    failed: list[str] = []

    def run(cluster_id: str, step) -> None:
        if fail_first and step.name.startswith(fail_first) and not failed:
            failed.append(step.id)
            raise RuntimeError("the driver exited with code 1")
        serve_pipes(PipesMappingParamsLoader(step_environment(step.args)), lambda request: run_stage(spark, request))

    return run


def _run_clusters(aws, requests: list[tuple[str, dict]]) -> list[tuple[dict, dict, list[dict]]]:
    """Each cluster started, with its RunJobFlow request and its steps, oldest first."""
    emr = aws.client("emr")
    clusters = sorted(emr.list_clusters()["Clusters"], key=lambda c: c["Status"]["Timeline"]["CreationDateTime"])
    started = [params for operation, params in requests if operation == "RunJobFlow"]
    assert len(started) == len(clusters)
    return [
        (
            emr.describe_cluster(ClusterId=c["Id"])["Cluster"],
            request,
            list(reversed(emr.list_steps(ClusterId=c["Id"])["Steps"])),  # EMR lists the newest first
        )
        for c, request in zip(clusters, started, strict=True)
    ]


@pytest.mark.slow
def test_a_migration_and_a_daily_batch_each_run_on_one_cluster_that_ends_with_the_run(
    aws, emr_requests, sample_root, postgres_url, pg_schema, spark, monkeypatch, tmp_path, capsys
):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="teem-runs")  # a bucket of its own: no other test's S3A client holds it
    days = SAMPLE_DAYS[:2]
    for path in sorted((sample_root / "csv").rglob("*")):
        if path.is_file() and ("/snapshot/" in path.as_posix() or any(f"/{d}/" in path.as_posix() for d in days)):
            s3.upload_file(str(path), "teem-runs", f"root/{path.relative_to(sample_root).as_posix()}")
    for name, value in {"TEEM_ENV": "aws", "TEEM_ROOT": "s3://teem-runs/root", "TEEM_HOME": str(tmp_path / "teem"),
                        "TEEM_POSTGRES_URL": postgres_url, "TEEM_PG_SCHEMA": pg_schema,
                        "TEEM_EMR_SUBNET_ID": SETTINGS["subnet_id"], "TEEM_EMR_ARCHIVE_URI": ARCHIVE_URI,
                        "TEEM_SPARK_AUTO_MAX_BYTES": "1",  # TEEM_ENV=aws's auto: every run on the cluster
                        "TEEM_EMR_POLL_SECONDS": "0.2", "TEEM_EMR_IDLE_TIMEOUT_SECONDS": "1800",
                        "TEEM_EMR_HOURLY_RATES": '{"m6i.xlarge": 0.5, "m6i.2xlarge": 1.25}',
                        "TEEM_EMR_STDERR_WAIT_SECONDS": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    defs = build_definitions()

    instance = dg.DagsterInstance.ephemeral()
    playing = PlayingEmr(_on_this_machine(spark, fail_first="teem migrate fact_"))
    with recording_aws_calls() as calls, playing:
        migration = run_job(defs, "migration_job", days[0], instance=instance)
        batch = run_job(defs, "batch_job", days[1], instance=instance)
        ended_run_sensor_evaluated(defs, instance, batch)  # the daemon's look for clusters the run left up

    [(first, first_request, first_steps), (second, second_request, second_steps)] = _run_clusters(aws, emr_requests)
    for cluster, request, result in ((first, first_request, migration), (second, second_request, batch)):
        tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
        assert tags["dagster/run-id"] == result.run_id
        assert tags["for-use-with-amazon-emr-managed-policies"] == "true"
        assert request["AutoTerminationPolicy"] == {"IdleTimeout": 1800}
        assert request["LogUri"] == cluster["LogUri"] == "s3://teem-runs/root/logs/emr/"
        assert _environment_of(cluster)["AWS_REGION"] == REGION  # exported to every step of the cluster
        assert cluster["Status"]["State"] == "TERMINATED"  # the run ended, and ended it
        # what it cost: 1 primary m6i.xlarge and 2 core m6i.2xlarge from the cluster's creation to its end
        timeline = cluster["Status"]["Timeline"]
        up = max((timeline["EndDateTime"] - timeline["CreationDateTime"]).total_seconds(), 60) / 3600
        run_tags = instance.get_run_by_id(result.run_id).tags
        assert run_tags["teem/spark"] == "emr" and "at least TEEM_SPARK_AUTO_MAX_BYTES" in run_tags["teem/spark_why"]
        assert run_tags["teem/emr_clusters"] == cluster["Id"]
        assert run_tags["teem/emr_instance_hours"] == f"{up * 3:.3f}"
        assert run_tags["teem/emr_estimated_cost"] == f"{up * (0.5 + 2 * 1.25):.2f} USD"
        costs = [
            m["run's EMR estimated cost so far"] for m in materializations(result).values() if "AWS EMR Step ID" in m
        ]
        assert costs and all(c.endswith(" USD") for c in costs)
    steps = [[(s["Name"], s["Status"]["State"]) for s in each] for each in (first_steps, second_steps)]
    dimensions = "teem {} " + ",".join(t.name for t in DIMENSIONS)
    facts = "teem {} " + ",".join(t.name for t in FACTS)
    assert steps[0] == [
        (dimensions.format("convert"), "COMPLETED"),
        (dimensions.format("migrate"), "COMPLETED"),
        (facts.format("convert"), "COMPLETED"),
        # the failed step retried as another step on the run's cluster, not on a second one
        (facts.format("migrate"), "FAILED"),
        (facts.format("migrate"), "COMPLETED"),
        ("teem aggregate agg_hourly_space,week_people_count", "COMPLETED"),
    ]
    assert steps[1] == [(facts.format(stage), "COMPLETED") for stage in ("convert", "migrate")] + [
        ("teem aggregate agg_hourly_space,week_people_count", "COMPLETED")
    ]
    assert len(playing.ran) == 9

    materialized = {e.asset_key.to_user_string() for e in batch.get_asset_materialization_events()}
    assert {f"migrated/{t.name}" for t in FACTS} | {f"postgres/{t.name}" for t in FACTS} <= materialized
    for table in FACTS:  # the generator's newest row per key over the three days, and nothing else
        rows = iceberg_rows("s3://teem-runs/root", "migrated", table.name, aws.endpoint)
        assert rows.num_rows == len(newest_by_key(table.name, days=[dt.date.fromisoformat(d) for d in days]))
    assert [k for k in _keys_in(aws, "teem-runs") if "/pipes/" in k] == []

    # `teem iam-policy` for these settings: every call of the runs (Dagster's side, the stages' drivers, Python
    # and JVM) allowed by the Dagster role, every S3 and Glue call by the instance profile's role, and no action
    # allowed that was not called
    assert main(["iam-policy", "--account", ACCOUNT]) == 0
    documents = json.loads(capsys.readouterr().out)
    assert policy_problems(documents["dagster_role"], calls) == []
    assert policy_problems(documents["instance_profile_role"], calls, services=("s3", "glue")) == []
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "glue:UpdateTable", "elasticmapreduce:RunJobFlow"} <= {
        c.action for c in calls
    }
    pass_roles = next(s for s in documents["dagster_role"]["Statement"] if s["Action"] == ["iam:PassRole"])
    assert sorted(pass_roles["Resource"]) == sorted(
        f"arn:aws:iam::{ACCOUNT}:role/{first_request[role]}" for role in ("ServiceRole", "JobFlowRole")
    )


def ended_run_sensor_evaluated(defs: dg.Definitions, instance: dg.DagsterInstance, result) -> str:
    sensor = defs.get_sensor_def("ended_run_clusters_failure")
    with dg.build_run_status_sensor_context(
        sensor.name, result.get_run_success_event(), instance, instance.get_run_by_id(result.run_id),
        resources={"spark": defs.resources["spark"], "storage": defs.resources["storage"]},
    ) as context:  # fmt: skip
        return sensor(context).skip_message


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
        "TEEM_SPARK_AUTO_MAX_BYTES": "0",  # TEEM_ENV=aws's auto: the cluster, whatever the size
    }
    with dagster_dev(env, tmp_path) as (graphql, location):
        repository = location["locationOrLoadError"]["repositories"][0]
        selector = {"repositoryLocationName": location["name"], "repositoryName": repository["name"]}
        launched = graphql(LAUNCH, params={"selector": {**selector, "jobName": "snapshot_job"}})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        cluster_id = aws.wait_for_cluster(timeout=240)
        aws.wait_for_step(cluster_id)  # the run waits on its step, which moto never ends
        assert graphql(TERMINATE, id=run_id)["terminateRun"]["__typename"] == "TerminateRunSuccess"

        def ended() -> str | None:
            status = graphql(STATUS, id=run_id)["runOrError"]["status"]
            return status if status in ("CANCELED", "FAILURE", "SUCCESS") else None

        assert wait_for(ended, 240, "the run to end", interval=1) == "CANCELED"
        assert aws.cluster_state(cluster_id) == "TERMINATED"
        cluster = aws.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
        assert cluster["LogUri"] == "s3://teem/root/logs/emr/"  # no TEEM_EMR_LOG_URI: under the root
        [step] = aws.client("emr").list_steps(ClusterId=cluster_id)["Steps"]
        command = step["Config"]["Args"][len(step_environment(step["Config"]["Args"])) + 1 :]
        assert command[:3] == ["timeout", "--kill-after=60", "7200"]  # TEEM_MAX_RUNTIME_SECONDS
        messages = [e.get("message", "") for e in graphql(LOGS, id=run_id)["logsForRun"]["events"]]
        assert any(cluster_id in m for m in messages)  # the step said which cluster it started
        assert [secret for secret in CANARIES if any(secret in m for m in messages)] == []
