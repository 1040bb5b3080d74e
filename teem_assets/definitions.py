"""The code location: every asset, resource and job of teem-pipelines."""

from __future__ import annotations

import dagster as dg

from jobs.batch_jobs import batch_job, migration_job, snapshot_job
from resources.postgres import PostgresResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.assets.aggregates import aggregate_assets
from teem_assets.assets.migrated import migrated_assets
from teem_assets.assets.parquet import parquet_assets
from teem_assets.assets.postgres import postgres_assets
from teem_assets.assets.raw import raw_specs
from teem_assets.settings import data_root, state_dir


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_specs, *parquet_assets, *migrated_assets, *postgres_assets, *aggregate_assets],
        jobs=[snapshot_job, batch_job, migration_job],
        resources={
            "spark": SparkResource(),
            "storage": StorageResource(root=data_root(), work_dir=str(state_dir() / "work")),
            "postgres": PostgresResource.from_environment(),
        },
        # One process per run, so the run's stages share one Spark application.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
