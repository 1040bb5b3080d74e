"""migrated/<table>: the current state as Iceberg tables (snapshot and incremental migration), by the migrate
stage (`teem_assets.stages.migrate`) wherever the `spark` resource runs it."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.held_back import refusing_short_batches
from teem_assets.assets.keys import migrated_key, parquet_key, selected_tables
from teem_assets.assets.stage import COMMIT_RETRIES, layer_spec, stage, stage_request
from teem_assets.catalogue import DIMENSIONS, FACTS, Table


def _spec(placement: Placement, table: Table) -> dg.AssetSpec:
    if table.is_dimension:
        how = "replaced as a whole by the newest snapshot, in one commit (snapshot migration)"
    else:
        how = (
            f"each batch upserted with MERGE INTO by {', '.join(table.primary_key)}, the newest {table.updated_at} wins"
        )
    description = f"Current state of {table.name}: an Iceberg table partitioned by created_date; {how}"
    kinds = {placement.compute_kind, "iceberg", placement.storage_kind}
    database = placement.migrated_database
    uri, name = placement.iceberg_uri(database, table.name), f"{database}.{table.name}"
    return layer_spec(placement, table, migrated_key(table), parquet_key(table), kinds, description, uri, name)


class SnapshotMigration(dg.Config):
    accept_shrink: list[str] = Field(
        default=[],
        description="Dimension tables whose snapshot may replace the table though it is empty or below the shrink "
        "threshold (TEEM_SNAPSHOT_SHRINK_THRESHOLD): a genuine shrink, accepted for this run only, and recorded in "
        "its config and its materialization's metadata. Never needed otherwise.",
    )


def migrated_snapshots(
    context: dg.AssetExecutionContext,
    config: SnapshotMigration,
    spark: SparkResource,
    storage: StorageResource,
    thresholds: CheckThresholds,
) -> Iterator[dg.MaterializeResult]:
    """The writer guards the table: it refuses a snapshot that shrank, whether or not the checks upstream ran."""
    tables = [t.name for t in selected_tables(context, DIMENSIONS, migrated_key)]
    unknown = sorted(set(config.accept_shrink) - {t.name for t in DIMENSIONS})
    if unknown:
        raise dg.Failure(
            f"accept_shrink names {', '.join(unknown)}, not a dimension table "
            f"({', '.join(t.name for t in DIMENSIONS)})",
            allow_retries=False,
        )
    settings = {
        "snapshot_shrink_threshold": thresholds.snapshot_shrink_threshold,
        "accept_shrink": config.accept_shrink,
    }
    request = stage_request(context, storage, "migrate", tables, ["snapshot"], settings)
    yield from spark.run_stage(context, storage, request)


def migrated_batches(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, thresholds: CheckThresholds
) -> Iterator[dg.MaterializeResult]:
    tables = [t.name for t in selected_tables(context, FACTS, migrated_key)]
    batches = refusing_short_batches(context, storage, thresholds)
    yield from spark.run_stage(context, storage, stage_request(context, storage, "migrate", tables, batches))


def migrated_assets(placement: Placement) -> list[dg.AssetsDefinition]:
    return [
        stage(placement, "migrated_snapshots", DIMENSIONS, _spec, retry_policy=COMMIT_RETRIES)(migrated_snapshots),
        stage(placement, "migrated_batches", FACTS, _spec, retry_policy=COMMIT_RETRIES)(migrated_batches),
    ]
