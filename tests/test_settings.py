"""The one settings object: its defaults, what a stage started by spark-submit inherits, and the thresholds the
launchpad shows."""

from __future__ import annotations

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
        "volume_threshold", "trailing_weeks", "trailing_batches", "snapshot_shrink_threshold", "freshness_max_age_hours"
    }  # fmt: skip
    assert shown.default_value["volume_threshold"] == 0.85  # what the launchpad fills in, to override per run
