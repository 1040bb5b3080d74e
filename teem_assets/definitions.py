"""The code location: every asset, resource and job of teem-pipelines.

Built from one `Settings` (teem_assets/settings.py). `TEEM_ENV` (local | aws, default local) picks the
production defaults; where the data lives (TEEM_ROOT) and where Spark runs (TEEM_SPARK) are settings of their
own. Text settings set in the environment become `dg.EnvVar` fields, so the launchpad shows where each comes
from; secrets only ever as `dg.EnvVar`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.alerts import alert_sensors
from jobs.batch_jobs import batch_jobs
from jobs.dead_runs import dead_run_sensor
from jobs.ended_run_clusters import ended_run_clusters_sensors
from jobs.executor import waiting_in_process_executor
from jobs.held_back import held_back_sensor
from jobs.rollback import rollback_job
from jobs.schedules import schedules
from jobs.sensors import unload_sensors
from resources.alerts import EmailAlerts, SlackAlerts
from resources.emr import EmrResource
from resources.emr_serverless import EmrServerlessResource
from resources.postgres import PostgresResource
from resources.spark import AUTO, IN_PROCESS, SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.aggregates import aggregate_assets
from teem_assets.assets.conventions import Placement
from teem_assets.assets.maintenance import maintenance_asset
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.assets.postgres import postgres_assets
from teem_assets.assets.raw import raw_specs
from teem_assets.checks.freshness import freshness_checks
from teem_assets.settings import EMR_VARIABLES, SERVERLESS_VARIABLES, Settings, is_set, load


def _named(value: Any, variable: str) -> Any:
    """A text setting the environment gives, as a field the launchpad shows by its variable's name."""
    return dg.EnvVar(variable) if isinstance(value, str) and is_set(variable) else value


def storage_from_settings(settings: Settings) -> StorageResource:
    """The data root (TEEM_ROOT) and its catalog."""
    return StorageResource(
        root=_named(settings.root, "TEEM_ROOT"),
        migrated_database=_named(settings.migrated_database, "TEEM_MIGRATED_DATABASE"),
        aggregates_database=_named(settings.aggregates_database, "TEEM_AGGREGATES_DATABASE"),
        aws_endpoint_url=_named(settings.aws_endpoint_url, "AWS_ENDPOINT_URL"),
        s3_endpoint_url=_named(settings.s3_endpoint_url, "AWS_ENDPOINT_URL_S3"),
        glue_endpoint_url=_named(settings.glue_endpoint_url, "AWS_ENDPOINT_URL_GLUE"),
        aws_region=settings.aws_region,
        snapshot_retention_days=settings.snapshot_retention_days,
        orphan_sweep_days=settings.orphan_sweep_days,
        staged_retention_days=settings.staged_retention_days,
        quarantine_retention_days=settings.quarantine_retention_days,
    )


def emr_from_settings(settings: Settings) -> EmrResource:
    fields = {key: _named(value, EMR_VARIABLES[key][0]) for key, value in settings.emr.items()}
    return EmrResource(
        **fields,
        step_timeout_seconds=settings.max_runtime_seconds,
        region=settings.aws_region,
        aws_endpoint_url=settings.aws_endpoint_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        emr_endpoint_url=settings.emr_endpoint_url,
    )


def emr_serverless_from_settings(settings: Settings) -> EmrServerlessResource:
    fields = {key: _named(value, SERVERLESS_VARIABLES[key][0]) for key, value in settings.emr_serverless.items()}
    return EmrServerlessResource(
        **fields,
        job_timeout_seconds=settings.max_runtime_seconds,
        region=settings.aws_region,
        aws_endpoint_url=settings.aws_endpoint_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        serverless_endpoint_url=settings.emr_serverless_endpoint_url,
    )


def spark_from_settings(settings: Settings) -> SparkResource:
    """TEEM_SPARK: in-process, a master URL, emr, emr-serverless, or auto (TEEM_ENV=aws's default: in-process
    for a small run, else TEEM_SPARK_AUTO_CLUSTER); TEEM_SPARK_MESSAGES_BUCKET for spark-submit's messages."""
    default_where = IN_PROCESS if settings.environment == "local" else AUTO
    return SparkResource(
        where=_named(settings.spark, "TEEM_SPARK") or default_where,
        auto_max_bytes=settings.spark_auto_max_bytes,
        auto_cluster=_named(settings.spark_auto_cluster, "TEEM_SPARK_AUTO_CLUSTER"),
        messages_bucket=_named(settings.spark_messages_bucket, "TEEM_SPARK_MESSAGES_BUCKET"),
        emr=emr_from_settings(settings),
        emr_serverless=emr_serverless_from_settings(settings),
    )


def resources_for(settings: Settings) -> dict[str, Any]:
    """The production defaults of the settings' environment: local runs Spark in the run's process and starts
    the embedded PostgreSQL when none is set; aws sends Spark stages to EMR and needs its PostgreSQL server named."""
    return {
        "spark": spark_from_settings(settings),
        "storage": storage_from_settings(settings),
        "postgres": PostgresResource.from_settings(settings, embedded_allowed=settings.environment == "local"),
        "thresholds": CheckThresholds.from_settings(settings),
        "s3": S3Resource(),
        "email": EmailAlerts.from_settings(settings),
        "slack": SlackAlerts.from_settings(settings),
    }


PROJECT_FILE = Path(__file__).resolve().parents[1] / "pyproject.toml"


def linked_to_code(assets: list[Any], settings: Settings) -> list[Any]:
    """Each computed asset's page links to the function that computes it (Dagster's code references): to the
    file in the repository at TEEM_CODE_URL, on TEEM_CODE_BRANCH, by its path relative to the repository's
    root; without TEEM_CODE_URL, to the file on this machine. (Dagster marks these beta: said once, here.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(assets)
        if settings.code_url is None:
            return list(referenced)
        anchor = dg.AnchorBasedFilePathMapping(
            local_file_anchor=PROJECT_FILE, file_anchor_path_in_repository="pyproject.toml"
        )
        return list(dg.link_code_references_to_git(referenced, settings.code_url, settings.code_branch, anchor))


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The code location from `settings` (this process's environment, read now, when None): every asset,
    check, job, schedule, sensor, resource and the executor is made from them here, nothing at import."""
    settings = settings or load()
    placement = Placement.of(settings)
    jobs = batch_jobs(settings.max_runtime_seconds)
    computed = [
        *parquet_assets(placement),
        *migrated_assets(placement),
        *postgres_assets(placement),
        *aggregate_assets(placement),
        maintenance_asset(placement),
    ]
    return dg.Definitions(
        assets=[*raw_specs(placement), *linked_to_code(computed, settings)],
        asset_checks=freshness_checks,
        jobs=[*jobs.all(), rollback_job],
        schedules=schedules(jobs),
        sensors=[
            *unload_sensors(settings, jobs),
            *alert_sensors(settings, jobs),
            dead_run_sensor(settings),
            held_back_sensor(jobs),
            *ended_run_clusters_sensors(jobs),
        ],
        resources=resources_for(settings),
        # One process per run, so the run's in-process stages share one Spark application; its waits for a
        # pool sleep, end dead holders and stop on a signal (jobs/executor.py).
        executor=waiting_in_process_executor(settings.run_heartbeat_timeout_seconds),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads (workspace.yaml, run workers): made from this process's settings when it
    loads, never when a module is imported."""
    return build_definitions()
