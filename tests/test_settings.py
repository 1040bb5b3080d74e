"""The one settings object: its defaults, what a stage started by spark-submit inherits, and the thresholds the
launchpad shows."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from resources.thresholds import CheckThresholds
from teem_assets.settings import SECRET_VARIABLES, Settings, stage_environment


def test_a_submitted_stage_gets_aws_and_its_pipes_variables_but_no_project_secret(monkeypatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.setenv(name, f"canary-{name}")
    monkeypatch.setenv("TEEM_SMTP_USER", "alerts")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "the-stage-needs-this")
    monkeypatch.setenv("JAVA_HOME", "/opt/java")
    env = stage_environment({"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msgs"})
    assert not [name for name, value in env.items() if "canary" in value or name.startswith("TEEM_SMTP")]
    assert env["AWS_ACCESS_KEY_ID"] == "the-stage-needs-this" and env["JAVA_HOME"] == "/opt/java"
    assert env["DAGSTER_PIPES_CONTEXT"] == "ctx" and env["DAGSTER_PIPES_MESSAGES"] == "msgs"
    assert env["PATH"]


def test_the_thresholds_resource_starts_from_the_settings_and_refuses_what_cannot_work() -> None:
    settings = Settings(volume_threshold=0.8, trailing_weeks=6, freshness_max_age_hours=12.0)
    thresholds = CheckThresholds.from_settings(settings)
    assert (thresholds.volume_threshold, thresholds.trailing_weeks, thresholds.freshness_max_age_hours) == (
        0.8, 6, 12.0
    )  # fmt: skip
    with pytest.raises(Exception, match="less than or equal to 1"):
        CheckThresholds(volume_threshold=1.2)


def test_the_definitions_show_each_threshold_in_the_launchpad(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TEEM_HOME", str(tmp_path))
    monkeypatch.setenv("TEEM_VOLUME_THRESHOLD", "0.85")
    from teem_assets.definitions import build_definitions

    defs = build_definitions()
    thresholds = defs.resources["thresholds"]
    assert isinstance(thresholds, CheckThresholds) and thresholds.volume_threshold == 0.85
    job = defs.resolve_job_def("batch_job")
    field = job.run_config_schema.config_type.fields["resources"].config_type.fields["thresholds"]
    shown = field.config_type.fields["config"]
    assert set(shown.config_type.fields) == {
        "volume_threshold", "trailing_weeks", "trailing_batches", "snapshot_shrink_threshold",
        "freshness_max_age_hours", "maintenance_small_file_mb", "maintenance_small_files", "maintenance_manifests",
    }  # fmt: skip
    assert shown.default_value["volume_threshold"] == 0.85  # what the launchpad fills in, to override per run


def test_no_module_reads_a_setting_when_it_is_imported(tmp_path) -> None:
    """Every module of the project imports with a setting that cannot work; only building the definitions reads
    it, and names it. A fresh interpreter: this process imported the modules long ago."""
    child = """
import importlib, pkgutil, sys
import jobs, resources, teem_assets
names = [m.name for p in (teem_assets, resources, jobs) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
for name in names:
    if not name.endswith((".__main__", ".entry")):  # a command's and a stage driver's own entry points
        importlib.import_module(name)
from teem_assets.definitions import build_definitions, defs
from teem_assets.settings import SettingError
try:
    defs()
except SettingError as error:
    print(len(names), error)
"""
    env = {**os.environ, "TEEM_FIRST_BATCH_DATE": "not-a-date", "TEEM_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count, message = done.stdout.strip().split(" ", 1)
    assert int(count) > 60  # every module, not an empty walk
    assert message == "TEEM_FIRST_BATCH_DATE is 'not-a-date': a date, YYYY-MM-DD"


def test_the_definitions_are_made_from_the_settings_they_are_given(tmp_path) -> None:
    from teem_assets.definitions import build_definitions

    settings = Settings(
        home=tmp_path,
        root="s3://bucket/warehouse",
        first_batch_date="2020-02-03",
        migrated_database="m_db",
        postgres_schema="exports",
        sensor_interval_seconds=45,
        unload_settle_seconds=7.0,
        run_heartbeat_timeout_seconds=120.0,
        max_runtime_seconds=600,
        webserver_url="https://dagster.example.com",
    )
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    events = graph.get(dg.AssetKey(["migrated", "fact_event_by_day"]))
    assert events.partitions_def.get_first_partition_key() == "2020-02-03"
    assert events.metadata["dagster/uri"] == "s3://bucket/warehouse/warehouse/m_db/fact_event_by_day"
    assert events.metadata["dagster/table_name"] == "m_db.fact_event_by_day"
    assert "s3" in events.kinds and "spark" in events.kinds
    assert graph.get(dg.AssetKey(["postgres", "dim_space"])).metadata["dagster/table_name"] == "exports.dim_space"
    assert graph.get(dg.AssetKey(["postgres", "dim_space"])).metadata["dagster/uri"] == f"file://{tmp_path}/postgres"
    assert defs.resolve_job_def("batch_job").tags["dagster/max_runtime"] == "600"
    assert defs.resolve_sensor_def("batch_unload_sensor").minimum_interval_seconds == 45
    assert defs.resolve_sensor_def("dead_run_sensor").minimum_interval_seconds == 45
    assert "120 s" in defs.resolve_sensor_def("dead_run_sensor").description
    assert defs.resources["postgres"].embedded_folder == str(tmp_path / "postgres")
    other = build_definitions(Settings(home=tmp_path, first_batch_date="2019-09-01"))  # and the defaults beside it
    assert other.resolve_asset_graph().get(events.key).partitions_def.get_first_partition_key() == "2019-09-01"
