"""What the README promises of the schedules, the freshness check, the alert channels, an older dagster.yaml
and the EMR settings, each in this process against a real Dagster instance (no Spark needed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from jobs.alerts import deliver
from resources.alerts import EmailAlerts, SlackAlerts
from teem_assets import cli
from teem_assets.checks.freshness import freshness
from teem_assets.runner import ensure_instance_settings

UTC = dt.UTC


@pytest.fixture
def defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("TEEM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEEM_ROOT", str(tmp_path / "root"))
    from teem_assets.definitions import build_definitions

    return build_definitions()


def test_the_daily_schedule_runs_yesterdays_batch_at_six_utc(defs: dg.Definitions) -> None:
    daily_batch_schedule = defs.resolve_schedule_def("daily_batch_schedule")
    assert (daily_batch_schedule.cron_schedule, daily_batch_schedule.execution_timezone) == ("0 6 * * *", "UTC")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 2, 6, tzinfo=UTC))
    [request] = daily_batch_schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-12-01"
    assert daily_batch_schedule.job_name == "batch_job"
    assert daily_batch_schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # the sensors are the usual trigger


def test_the_weekly_snapshot_and_the_hourly_freshness_schedules(defs: dg.Definitions) -> None:
    weekly_snapshot_schedule = defs.resolve_schedule_def("weekly_snapshot_schedule")
    freshness_schedule = defs.resolve_schedule_def("freshness_schedule")
    assert (weekly_snapshot_schedule.cron_schedule, weekly_snapshot_schedule.job_name) == ("0 5 * * 1", "snapshot_job")
    assert (freshness_schedule.cron_schedule, freshness_schedule.job_name) == ("0 * * * *", "freshness_job")
    for schedule in (weekly_snapshot_schedule, freshness_schedule):
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # the sensors are the usual trigger
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 30, 5, tzinfo=UTC))
    [request] = weekly_snapshot_schedule.evaluate_tick(context).run_requests
    assert request.partition_key is None


def test_freshness_counts_from_the_end_of_the_newest_batchs_day() -> None:
    now = dt.datetime(2026, 12, 3, 12, tzinfo=UTC)
    fresh = freshness("2026-12-01", now, 48)  # complete at 2026-12-02 00:00: 36 hours ago
    assert (fresh.age_hours, fresh.passed) == (36.0, True)
    stale = freshness("2026-11-30", now, 48)  # complete at 2026-12-01 00:00: 60 hours ago
    assert (stale.age_hours, stale.passed) == (60.0, False)
    assert freshness("2026-12-01", now, 36).passed and not freshness("2026-12-01", now, 35.9).passed
    assert not freshness(None, now, 48).passed


def test_freshness_job_warns_about_a_stale_table_and_passes_a_fresh_one(defs: dg.Definitions) -> None:
    yesterday = (dt.datetime.now(UTC).date() - dt.timedelta(days=1)).isoformat()
    with dg.instance_for_test() as instance:
        for table, day in (("fact_event_by_day", yesterday), ("fact_attendance", "2019-09-03")):
            instance.report_runless_asset_event(dg.AssetMaterialization(["migrated", table], partition=day))
        result = defs.resolve_job_def("freshness_job").execute_in_process(instance=instance, raise_on_error=False)
    found = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert found["fact_event_by_day"].passed
    assert found["fact_event_by_day"].metadata["newest_batch"].value == yesterday
    stale = found["fact_attendance"]
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert stale.metadata["newest_batch"].value == "2019-09-03" and stale.metadata["age_hours"].value > 48 * 365
    assert result.success  # a warning: the run itself succeeds, the alert sensor reports it


def test_an_unconfigured_channel_is_skipped_and_named() -> None:
    context = dg.build_sensor_context()
    sent = deliver(context.log, EmailAlerts(), SlackAlerts(), "subject", "body")
    assert sent == []
    assert not EmailAlerts(host="smtp.example.com").configured  # a host without recipients sends nothing
    assert EmailAlerts(host="smtp.example.com", recipients=["a@example.com"]).configured


def test_an_older_dagster_yaml_gets_what_it_lacks_and_keeps_its_own(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    older = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 4  # ours\n"
    (home / "dagster.yaml").write_text(older)
    ensure_instance_settings(str(home))
    written = (home / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 4  # ours" in written  # the user's own run limit, and its comment, stay
    assert written.count("concurrency:") == 1 and "run_retries:" in written and "run_monitoring:" in written
    ensure_instance_settings(str(home))
    assert (home / "dagster.yaml").read_text() == written  # once only
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert instance.run_monitoring_enabled and instance.run_retries_max_retries == 2
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1  # merged into the block that was there
        assert config.run_queue_config.max_concurrent_runs == 4
    finally:
        instance.dispose()


def test_a_dagster_yaml_whose_pools_allow_two_writers_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    older = "concurrency:\n  pools:\n    default_limit: 3\n"
    (home / "dagster.yaml").write_text(older)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TEEM_HOME", str(tmp_path / "teem"))
    assert cli.main(["runs"]) == 2  # `teem runs`, in this process: the settings come from the environment
    said = capsys.readouterr().err
    assert "Traceback" not in said
    assert str(home / "dagster.yaml") in said and "default_limit: 1" in said
    assert (home / "dagster.yaml").read_text() == older  # left as the user wrote it


EMR_SETTINGS = {
    "TEEM_EMR_RELEASE_LABEL": "emr-7.9.0",
    "TEEM_EMR_UNTESTED_RELEASE": "true",
    "TEEM_EMR_STDERR_WAIT_SECONDS": "45",
    "TEEM_EMR_IDLE_TIMEOUT_SECONDS": "1200",
    "TEEM_EMR_HOURLY_RATES": '{"m7g.xlarge": 0.2, "r7g.2xlarge": 0.53}',
    "TEEM_EMR_MASTER_INSTANCE_TYPE": "m7g.xlarge",
    "TEEM_EMR_CORE_INSTANCE_TYPE": "r7g.2xlarge",
    "TEEM_EMR_CORE_INSTANCE_COUNT": "5",
    "TEEM_EMR_SUBNET_ID": "subnet-0abc",
    "TEEM_EMR_SERVICE_ROLE": "TeemEmrService",
    "TEEM_EMR_INSTANCE_PROFILE": "TeemEmrNodes",
    "TEEM_EMR_LOG_URI": "s3://logs/emr/",
    "TEEM_EMR_ARCHIVE_URI": "s3://code/teem.tar.gz",
    "TEEM_EMR_MESSAGES_BUCKET": "teem-messages",
    "TEEM_EMR_POLL_SECONDS": "7.5",
    "TEEM_EMR_TAGS": '{"team": "data", "cost-centre": "42"}',
    "TEEM_EMR_BOOTSTRAP_ACTIONS": '[{"name": "agent", "path": "s3://code/agent.sh", "args": ["--quiet"]}]',
    "TEEM_EMR_SPARK_CONF": '{"spark.executor.memory": "12g"}',
    "TEEM_EMR_ICEBERG_CONF": '{"iceberg.enabled": "true", "extra": "x"}',
}


def test_every_emr_setting_reaches_the_emr_resource(defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EMR_SETTINGS.items():
        monkeypatch.setenv(name, value)
    from teem_assets.definitions import build_definitions

    emr = build_definitions().resources["spark"].emr.process_config_and_initialize()  # EnvVars resolved
    assert (emr.release_label, emr.untested_release, emr.master_instance_type, emr.core_instance_type) == (
        "emr-7.9.0", True, "m7g.xlarge", "r7g.2xlarge"
    )  # fmt: skip
    assert (emr.core_instance_count, emr.subnet_id, emr.service_role, emr.instance_profile) == (
        5, "subnet-0abc", "TeemEmrService", "TeemEmrNodes"
    )  # fmt: skip
    assert (emr.log_uri, emr.archive_uri, emr.messages_bucket, emr.poll_seconds) == (
        "s3://logs/emr/", "s3://code/teem.tar.gz", "teem-messages", 7.5
    )  # fmt: skip
    assert emr.tags == json.loads(EMR_SETTINGS["TEEM_EMR_TAGS"])
    assert emr.bootstrap_actions == json.loads(EMR_SETTINGS["TEEM_EMR_BOOTSTRAP_ACTIONS"])
    assert emr.spark_conf == {"spark.executor.memory": "12g"}
    assert (emr.stderr_wait_seconds, emr.idle_timeout_seconds) == (45, 1200)
    assert emr.hourly_rates == {"m7g.xlarge": 0.2, "r7g.2xlarge": 0.53}
    assert emr.iceberg_conf == {"iceberg.enabled": "true", "extra": "x"}


def test_aws_runs_spark_where_auto_chooses_with_its_settings(defs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEEM_ENV", "aws")
    monkeypatch.setenv("TEEM_POSTGRES_URL", "postgresql://teem@db.internal/analytics")
    monkeypatch.setenv("TEEM_SPARK_AUTO_MAX_BYTES", "123456789")
    monkeypatch.setenv("TEEM_SPARK_AUTO_CLUSTER", "spark://spark-master:7077")
    from teem_assets.definitions import build_definitions

    spark = build_definitions().resources["spark"]
    assert (spark.where, spark.auto_max_bytes) == ("auto", 123456789)
    assert spark.auto_cluster.get_value() == "spark://spark-master:7077"  # a dg.EnvVar: the launchpad names it


def test_a_service_s_own_endpoint_wins_over_aws_endpoint_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = {
        "TEEM_HOME": str(tmp_path / "home"),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://aws.internal:1",
        "AWS_ENDPOINT_URL_S3": "http://minio:9000",
        "AWS_ENDPOINT_URL_EMR": "https://emr.vpce.internal",
        "TEEM_ROOT": "s3://teem/root",
    }
    for name, value in endpoints.items():
        monkeypatch.setenv(name, value)
    from teem_assets.definitions import build_definitions

    resources = build_definitions().resources
    data = resources["storage"].process_config_and_initialize().data
    assert (data.catalog_settings.s3_endpoint, data.catalog_settings.glue_endpoint) == (
        "http://minio:9000", "http://aws.internal:1"
    )  # fmt: skip
    emr = resources["spark"].emr.process_config_and_initialize()
    assert {s: emr._client(s).meta.endpoint_url for s in ("s3", "emr")} == {
        "s3": "http://minio:9000", "emr": "https://emr.vpce.internal"
    }  # fmt: skip
