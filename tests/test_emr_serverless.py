"""EMR Serverless through dagster-aws's Pipes client on moto: the application a setting names is created once
and shared, each Spark stage is a job run whose request carries the environment archive, the region and the
log URI, materializations and checks come back through S3, a failed job run says why with its stderr's end,
the run's cost is on its tags, and the job runs of a run that died are cancelled."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from aws_calls import ACCOUNT, policy_problems, recording_aws_calls
from dagster_helpers import materializations
from dagster_pipes import PipesMappingParamsLoader
from emr_world import CANARY_KEY_ID, CANARY_SECRET, REGION, moto_aws
from oracle import current_rows
from serverless_world import BILLED, PlayingServerless, driver_environment, job_runs, serverless_on_moto
from tables import iceberg_rows

from jobs.batch_jobs import batch_jobs
from jobs.ended_run_clusters import ended_run_clusters_sensors
from resources.emr import EmrSettingError
from resources.emr_serverless import EmrServerlessResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.catalogue import DIMENSIONS
from teem_assets.cli import main
from teem_assets.packaging import upload
from teem_assets.serverless_environment import BESIDE
from teem_assets.settings import Settings
from teem_assets.stages import run_stage
from teem_assets.stages.entry import serve_pipes

ARCHIVE = "s3://teem-artifacts/serverless/teem-serverless-py3.11-x86_64.tar.gz"
ROLE = "arn:aws:iam::123456789012:role/TeemServerlessJobs"  # moto's account: it refuses another's role
CAPACITY = {"DRIVER": {"workerCount": 1, "workerConfiguration": {"cpu": "2vCPU", "memory": "4GB"}}}
RATES = {"vCPUHour": 0.06, "memoryGBHour": 0.007, "storageGBHour": 0.0002}
placement = Placement.of(Settings())
parquet_snapshots, migrated_dimensions = parquet_assets(placement)[0], migrated_assets(placement)[0]


@pytest.fixture
def aws(monkeypatch, tmp_path):
    with serverless_on_moto(monkeypatch), moto_aws() as aws:
        for name, value in (("AWS_ENDPOINT_URL", aws.endpoint), ("AWS_ACCESS_KEY_ID", CANARY_KEY_ID),
                            ("AWS_SECRET_ACCESS_KEY", CANARY_SECRET), ("AWS_REGION", REGION)):  # fmt: skip
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("dagster._core.pipes.utils.WAIT_FOR_LOGS_TIMEOUT", 1)
        archive = tmp_path / "environment.tar.gz"
        archive.write_bytes(b"environment")
        upload(archive, ARCHIVE, BESIDE)  # what `teem package --target emr-serverless --upload` puts there
        yield aws


def _serverless(aws, **changes) -> EmrServerlessResource:
    settings = {"execution_role_arn": ROLE, "archive_uri": ARCHIVE, "initial_capacity": CAPACITY,
                "idle_stop_minutes": 20, "poll_seconds": 0.2, "stderr_wait_seconds": 5, "rates": RATES,
                "job_timeout_seconds": 5400}  # fmt: skip
    return EmrServerlessResource(**{**settings, **changes}, region=REGION, aws_endpoint_url=aws.endpoint)


def _resources(aws, bucket: str, **changes) -> dict:
    storage = StorageResource(root=f"s3://{bucket}/root", aws_endpoint_url=aws.endpoint, aws_region=REGION)
    spark = SparkResource(where="emr-serverless", emr_serverless=_serverless(aws, **changes))
    return {"spark": spark, "storage": storage, "thresholds": CheckThresholds()}


def _on_this_machine(spark, fail: str | None = None):
    """A job run's work as the service does it: its driver's Pipes variables, the project's driver code on a
    warm Spark session (the test's). `fail`: job runs whose name starts with it fail, as a driver that exited 1."""

    def run(job_run) -> None:
        if fail and job_run.name.startswith(fail):
            raise RuntimeError("\n".join(f"driver line {n}" for n in range(1, 41)))
        serve_pipes(PipesMappingParamsLoader(driver_environment(job_run)), lambda r: run_stage(spark, r))

    return run


def _upload_snapshots(aws, sample_root, bucket: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)  # a bucket of its own: no other test's S3A client holds it
    for path in sorted((sample_root / "csv").rglob("*")):
        if path.is_file() and "/snapshot/" in path.as_posix():
            s3.upload_file(str(path), bucket, f"root/{path.relative_to(sample_root).as_posix()}")


def _parameters(job_run) -> dict[str, str]:
    words = job_run.job_driver["sparkSubmit"]["sparkSubmitParameters"].split()
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--conf")


@pytest.mark.slow
def test_stages_run_as_job_runs_on_one_application_and_report_back_through_pipes(
    aws, sample_root, spark, monkeypatch, capsys
):
    _upload_snapshots(aws, sample_root, "teem-serverless")
    resources = _resources(aws, "teem-serverless")
    instance = dg.DagsterInstance.ephemeral()
    with recording_aws_calls() as calls, PlayingServerless(_on_this_machine(spark), aws.endpoint) as playing:
        first = dg.materialize([parquet_snapshots, migrated_dimensions], resources=resources, instance=instance)
    dimensions = ",".join(t.name for t in DIMENSIONS)
    assert playing.ran == [f"teem convert {dimensions}", f"teem migrate {dimensions}"]

    serverless = aws.client("emr-serverless")
    [application] = serverless.list_applications()["applications"]
    created = serverless.get_application(applicationId=application["id"])["application"]
    assert (created["name"], created["releaseLabel"], created["type"]) == ("teem-pipelines", "emr-7.12.0", "Spark")
    assert created["initialCapacity"] == CAPACITY
    assert created["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 20}
    assert created["tags"]["for-use-with-amazon-emr-managed-policies"] == "true"

    runs = job_runs()
    assert len(runs) == 2 and {r.application_id for r in runs} == {application["id"]}
    for job_run in runs:
        assert job_run.execution_role_arn == ROLE
        assert job_run.tags["dagster/run-id"] == first.run_id
        assert job_run.execution_timeout_minutes == 90
        assert job_run.job_driver["sparkSubmit"]["entryPoint"] == f"{ARCHIVE}.teem_stage.py"
        monitoring = job_run.configuration_overrides["monitoringConfiguration"]
        assert monitoring["s3MonitoringConfiguration"]["logUri"] == "s3://teem-serverless/root/logs/emr-serverless/"
        conf = _parameters(job_run)
        assert conf["spark.archives"] == f"{ARCHIVE}#environment"
        for side in ("spark.emr-serverless.driverEnv.", "spark.executorEnv."):
            assert conf[f"{side}PYSPARK_PYTHON"] == "./environment/bin/python"
            assert conf[f"{side}AWS_REGION"] == REGION and conf[f"{side}TZ"] == "UTC"
        assert not any(canary in repr(conf) for canary in (CANARY_KEY_ID, CANARY_SECRET))

    metadata = materializations(first)
    for table in DIMENSIONS:
        migrated = metadata[f"migrated/{table.name}"]
        assert migrated["AWS EMR Serverless Job Run ID"] == runs[1].id
        assert migrated["AWS EMR Serverless Application ID"] == application["id"]
        assert migrated["AWS EMR Serverless Driver Logs"] == (
            f"s3://teem-serverless/root/logs/emr-serverless/applications/{application['id']}/jobs/{runs[1].id}"
            "/SPARK_DRIVER/"
        )
        rows = iceberg_rows("s3://teem-serverless/root", "migrated", table.name, aws.endpoint)
        assert rows.num_rows == len(current_rows(table.name)) == migrated["dagster/row_count"]
    assert all(c.passed for c in first.get_asset_check_evaluations())

    one_job = sum(BILLED[k] * RATES[k] for k in BILLED)
    tags = instance.get_run_by_id(first.run_id).tags
    assert tags["teem/emr_serverless_job_runs"] == f"{runs[0].id},{runs[1].id}"
    assert tags["teem/emr_serverless_vcpu_hours"] == f"{2 * BILLED['vCPUHour']:.3f}"
    assert tags["teem/emr_serverless_estimated_cost"] == f"{2 * one_job:.4f} USD"
    s3 = aws.client("s3")
    assert [
        o["Key"] for o in s3.list_objects_v2(Bucket="teem-serverless").get("Contents", []) if "/pipes/" in o["Key"]
    ] == []

    # Another run, on the same application; its job run fails: the reason and the last 30 lines of its driver's
    # stderr in the step's error, its cost on the run all the same
    with (
        recording_aws_calls() as failing_calls,
        PlayingServerless(_on_this_machine(spark, fail="teem convert"), aws.endpoint),
    ):
        failed = dg.materialize([parquet_snapshots], resources=resources, instance=instance, raise_on_error=False)
    assert not failed.success
    assert [a["id"] for a in serverless.list_applications()["applications"]] == [application["id"]]
    assert job_runs()[-1].application_id == application["id"]
    assert instance.get_run_by_id(failed.run_id).tags["teem/emr_serverless_estimated_cost"] == f"{one_job:.4f} USD"
    [failure] = failed.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert f"EMR Serverless job run {job_runs()[-1].id} (teem convert {dimensions}) FAILED" in message
    assert "Job failed, please check complete logs in S3." in message
    assert "driver line 40" in message and "driver line 11\n" in message and "driver line 10\n" not in message
    assert len(job_runs()) == 3  # the conversion has no retry policy: one job run for it

    # A job run the failed run's worker left live (it died): the ended-run sensor cancels it, and no other
    left = {}
    for run_id in (failed.run_id, "a-living-run"):
        left[run_id] = serverless.start_job_run(
            applicationId=application["id"], executionRoleArn=ROLE, tags={"dagster/run-id": run_id},
            jobDriver={"sparkSubmit": {"entryPoint": f"{ARCHIVE}.teem_stage.py"}},
        )["jobRunId"]  # fmt: skip
    with recording_aws_calls() as sensor_calls:
        said = ended_run_sensor_evaluated(resources, instance, failed)
    state = {
        run_id: serverless.get_job_run(applicationId=application["id"], jobRunId=job_run)["jobRun"]["state"]
        for run_id, job_run in left.items()
    }
    assert state == {failed.run_id: "CANCELLED", "a-living-run": "SUBMITTED"}
    assert left[failed.run_id] in said

    # `teem iam-policy` for these settings allows every call above and nothing that was not called
    for name, value in {"TEEM_ENV": "aws", "TEEM_SPARK": "emr-serverless", "TEEM_ROOT": "s3://teem-serverless/root",
                        "TEEM_EMR_SERVERLESS_EXECUTION_ROLE_ARN": ROLE,
                        "TEEM_EMR_SERVERLESS_ARCHIVE_URI": ARCHIVE}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["iam-policy", "--account", ACCOUNT]) == 0
    documents = json.loads(capsys.readouterr().out)
    every_call = calls + failing_calls + sensor_calls
    assert policy_problems(documents["dagster_role"], every_call) == []
    assert policy_problems(documents["execution_role"], every_call, services=("s3", "glue")) == []
    pass_role = next(s for s in documents["dagster_role"]["Statement"] if s["Action"] == ["iam:PassRole"])
    assert pass_role["Resource"] == [ROLE]


def ended_run_sensor_evaluated(resources: dict, instance: dg.DagsterInstance, result) -> str:
    sensor = {s.name: s for s in ended_run_clusters_sensors(batch_jobs(3600))}["ended_run_clusters_failure"]
    with dg.build_run_status_sensor_context(
        sensor.name, result.get_run_failure_event(), instance, instance.get_run_by_id(result.run_id),
        resources={"spark": resources["spark"], "storage": resources["storage"]},
    ) as context:  # fmt: skip
        return sensor(context).skip_message


def test_applications_of_one_name_resolve_to_the_oldest_and_a_release_mismatch_is_refused(aws):
    serverless = aws.client("emr-serverless")
    made = [
        serverless.create_application(name="teem-pipelines", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
        for _ in range(2)  # what two runs that both found none leave
    ]
    serverless.create_application(name="someone-else", releaseLabel="emr-7.12.0", type="SPARK")
    expected = min(made)  # moto's createdAt is the day: the id breaks the tie, as for every run
    resource = _serverless(aws)
    assert resource.application_id(dg.get_dagster_logger()) == expected
    assert len(serverless.list_applications()["applications"]) == 3  # nothing created, nothing deleted
    with pytest.raises(EmrSettingError, match=r"runs emr-7\.12\.0, the settings say emr-7\.13\.0"):
        _serverless(aws, release_label="emr-7.13.0", untested_release=True).application_id(dg.get_dagster_logger())


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"execution_role_arn": None}, "TEEM_EMR_SERVERLESS_EXECUTION_ROLE_ARN"),
        ({"release_label": "emr-6.15.0"}, "an emr-7.x.y release"),
        ({"release_label": "emr-7.5.0"}, "TEEM_EMR_SERVERLESS_UNTESTED_RELEASE=true"),
        ({"archive_uri": "s3://teem-artifacts/serverless/missing.tar.gz"}, "missing.tar.gz does not exist"),
    ],
)
def test_bad_settings_fail_before_any_job_run(aws, changes, says):
    resources = _resources(aws, "teem", **changes)
    result = dg.materialize([parquet_snapshots], resources=resources, raise_on_error=False)
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert says in (error.cause or error).message
    assert aws.client("emr-serverless").list_applications()["applications"] == []
