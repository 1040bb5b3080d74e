"""The code location: every asset, resource and job of teem-pipelines."""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs.alerts import alert_sensors
from jobs.batch_jobs import batch_job, migration_job, snapshot_job
from jobs.schedules import freshness_job, schedules
from jobs.sensors import unload_sensors
from resources.alerts import EmailAlerts, SlackAlerts
from resources.postgres import PostgresResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.assets.aggregates import aggregate_assets
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.assets.postgres import postgres_assets
from teem_assets.assets.raw import raw_specs
from teem_assets.checks.freshness import freshness_checks
from teem_assets.settings import data_root


def storage_from_environment() -> StorageResource:
    """The data root (TEEM_ROOT) and its catalog; AWS settings through dg.EnvVar, so the launchpad shows them."""
    return StorageResource(
        root=data_root(),
        migrated_database=dg.EnvVar("TEEM_MIGRATED_DATABASE").get_value("migrated"),
        aggregates_database=dg.EnvVar("TEEM_AGGREGATES_DATABASE").get_value("aggregates"),
        aws_endpoint_url=dg.EnvVar("AWS_ENDPOINT_URL").get_value(),
        aws_region=dg.EnvVar("AWS_REGION").get_value() or dg.EnvVar("AWS_DEFAULT_REGION").get_value(),
    )


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_specs, *parquet_assets, *migrated_assets, *postgres_assets, *aggregate_assets],
        asset_checks=freshness_checks,
        jobs=[snapshot_job, batch_job, migration_job, freshness_job],
        schedules=schedules,
        sensors=[*unload_sensors, *alert_sensors],
        resources={
            "spark": SparkResource(),
            "storage": storage_from_environment(),
            "postgres": PostgresResource.from_environment(),
            "s3": S3Resource(),
            "email": EmailAlerts.from_environment(),
            "slack": SlackAlerts.from_environment(),
        },
        # One process per run, so the run's stages share one Spark application.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
