"""The code location: every asset, resource and job of teem-pipelines.

`TEEM_ENV` (local | aws, default local) picks the production defaults, one dict of resources per environment;
where the data lives (TEEM_ROOT) and where Spark runs (TEEM_SPARK) are settings of their own. Settings set
in the environment become `dg.EnvVar` fields, so the launchpad shows where each comes from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.alerts import alert_sensors
from jobs.batch_jobs import batch_job, migration_job, snapshot_job
from jobs.dead_runs import dead_run_sensor
from jobs.executor import waiting_in_process_executor
from jobs.schedules import freshness_job, schedules
from jobs.sensors import unload_sensors
from resources.alerts import EmailAlerts, SlackAlerts
from resources.emr import EmrResource
from resources.postgres import PostgresResource
from resources.spark import EMR, IN_PROCESS, SparkResource
from resources.storage import StorageResource
from teem_assets.assets.aggregates import aggregate_assets
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.assets.postgres import postgres_assets
from teem_assets.assets.raw import raw_specs
from teem_assets.checks.freshness import freshness_checks
from teem_assets.settings import data_root, orphan_sweep_days, snapshot_retention_days

ENVIRONMENTS = ("local", "aws")
# EmrResource's fields and the variables that set them (README, "Running on AWS").
EMR_SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "release_label": ("TEEM_EMR_RELEASE_LABEL", str),
    "master_instance_type": ("TEEM_EMR_MASTER_INSTANCE_TYPE", str),
    "core_instance_type": ("TEEM_EMR_CORE_INSTANCE_TYPE", str),
    "core_instance_count": ("TEEM_EMR_CORE_INSTANCE_COUNT", int),
    "subnet_id": ("TEEM_EMR_SUBNET_ID", str),
    "service_role": ("TEEM_EMR_SERVICE_ROLE", str),
    "instance_profile": ("TEEM_EMR_INSTANCE_PROFILE", str),
    "log_uri": ("TEEM_EMR_LOG_URI", str),
    "archive_uri": ("TEEM_EMR_ARCHIVE_URI", str),
    "messages_bucket": ("TEEM_EMR_MESSAGES_BUCKET", str),
    "poll_seconds": ("TEEM_EMR_POLL_SECONDS", float),
    "tags": ("TEEM_EMR_TAGS", json.loads),
    "bootstrap_actions": ("TEEM_EMR_BOOTSTRAP_ACTIONS", json.loads),
    "spark_conf": ("TEEM_EMR_SPARK_CONF", json.loads),
    "iceberg_conf": ("TEEM_EMR_ICEBERG_CONF", json.loads),
}


def _set(name: str) -> str | None:
    return dg.EnvVar(name).get_value() or None


def _fields(settings: dict[str, tuple[str, Callable[[str], Any]]]) -> dict[str, Any]:
    """The settings present in the environment: text as dg.EnvVar (the launchpad names the variable), numbers
    through dg.EnvVar.int, structured ones parsed from JSON."""
    fields: dict[str, Any] = {}
    for field, (name, parse) in settings.items():
        if _set(name) is None:
            continue
        if parse is str:
            fields[field] = dg.EnvVar(name)
        elif parse is int:
            fields[field] = dg.EnvVar.int(name)
        else:
            fields[field] = parse(_set(name))
    return fields


def storage_from_environment() -> StorageResource:
    """The data root (TEEM_ROOT) and its catalog; each setting the environment gives shows in the launchpad
    by its variable's name."""
    return StorageResource(
        root=dg.EnvVar("TEEM_ROOT") if _set("TEEM_ROOT") else data_root(),
        migrated_database=dg.EnvVar("TEEM_MIGRATED_DATABASE") if _set("TEEM_MIGRATED_DATABASE") else "migrated",
        aggregates_database=dg.EnvVar("TEEM_AGGREGATES_DATABASE") if _set("TEEM_AGGREGATES_DATABASE") else "aggregates",
        aws_endpoint_url=dg.EnvVar("AWS_ENDPOINT_URL") if _set("AWS_ENDPOINT_URL") else None,
        aws_region=_set("AWS_REGION") or _set("AWS_DEFAULT_REGION"),
        snapshot_retention_days=snapshot_retention_days(),
        orphan_sweep_days=orphan_sweep_days(),
    )


def emr_from_environment() -> EmrResource:
    region = _set("AWS_REGION") or _set("AWS_DEFAULT_REGION")
    return EmrResource(**_fields(EMR_SETTINGS), region=region, aws_endpoint_url=_set("AWS_ENDPOINT_URL"))


def spark_from_environment(default_where: str) -> SparkResource:
    """TEEM_SPARK: in-process, a master URL, or emr; TEEM_SPARK_MESSAGES_BUCKET for spark-submit's messages."""
    return SparkResource(
        where=dg.EnvVar("TEEM_SPARK") if _set("TEEM_SPARK") else default_where,
        messages_bucket=dg.EnvVar("TEEM_SPARK_MESSAGES_BUCKET") if _set("TEEM_SPARK_MESSAGES_BUCKET") else None,
        emr=emr_from_environment(),
    )


def resources_for(environment: str) -> dict[str, Any]:
    """The production defaults of `environment`: local runs Spark in the run's process and starts the embedded
    PostgreSQL when none is set; aws sends Spark stages to EMR and needs its PostgreSQL server named."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"TEEM_ENV is {environment!r}: one of {', '.join(ENVIRONMENTS)}")
    local = environment == "local"
    return {
        "spark": spark_from_environment(IN_PROCESS if local else EMR),
        "storage": storage_from_environment(),
        "postgres": PostgresResource.from_environment(embedded_allowed=local),
        "s3": S3Resource(),
        "email": EmailAlerts.from_environment(),
        "slack": SlackAlerts.from_environment(),
    }


def build_definitions(environment: str | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_specs, *parquet_assets, *migrated_assets, *postgres_assets, *aggregate_assets],
        asset_checks=freshness_checks,
        jobs=[snapshot_job, batch_job, migration_job, freshness_job],
        schedules=schedules,
        sensors=[*unload_sensors, *alert_sensors, dead_run_sensor],
        resources=resources_for(environment or dg.EnvVar("TEEM_ENV").get_value("local") or "local"),
        # One process per run, so the run's in-process stages share one Spark application; its waits for a
        # pool sleep, end dead holders and stop on a signal (jobs/executor.py).
        executor=waiting_in_process_executor,
    )


defs = build_definitions()
