"""migrated/<table>: the current state in the Athena layout (snapshot and incremental migration)."""

from collections.abc import Iterator

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets import layout
from teem_assets.assets.keys import migrated_key, parquet_key, selected_tables
from teem_assets.assets.metadata import preview, table_metadata
from teem_assets.assets.stage import layer_spec, stage
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.migration import MigrationReport, migrate_batches, replace_snapshot


def _spec(table: Table) -> dg.AssetSpec:
    if table.is_dimension:
        how = "replaced as a whole by the newest snapshot (snapshot migration)"
    else:
        how = f"each batch upserted by {', '.join(table.primary_key)}, the newest {table.updated_at} wins"
    description = f"Current state of {table.name}: Snappy Parquet in created_date= folders; {how}"
    return layer_spec(table, migrated_key(table), parquet_key(table), "migrated", {"spark", "parquet"}, description)


def _metadata(table: Table, root: str, report: MigrationReport, **extra: object) -> dict[str, object]:
    return table_metadata(
        table,
        **{
            "dagster/row_count": report.table_rows,
            "rows_read": report.rows_in,
            "rows_quarantined": report.rows_rejected,
            "keys_updated": report.keys_updated,
            "duplicates_dropped": report.duplicates_dropped,
            "partitions_written": len(report.partitions),
            "rows_in_partitions_written": report.rows_in_partitions,
            "created_dates": dg.MetadataValue.text(", ".join(report.partitions[:50])),
            "path": dg.MetadataValue.path(layout.migrated(root, table.name)),
            "preview": preview(layout.migrated(root, table.name)),
            **extra,
        },
    )


@stage("migrated_snapshots", DIMENSIONS, _spec)
def migrated_snapshots(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    root = storage.local_root
    for table in selected_tables(context, DIMENSIONS, migrated_key):
        report = replace_snapshot(
            spark.session(),
            table,
            layout.parquet_snapshot(root, table.name),
            layout.migrated(root, table.name),
            layout.quarantine(root, table.name, "migrate-snapshot"),
            publish=storage.publish,
        )
        yield dg.MaterializeResult(asset_key=migrated_key(table), metadata=_metadata(table, root, report))


@stage("migrated_batches", FACTS, _spec)
def migrated_batches(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    root = storage.local_root
    batches = list(context.partition_keys)
    for table in selected_tables(context, FACTS, migrated_key):
        storage.pull(layout.migrated(root, table.name))
        report = migrate_batches(
            spark.session(),
            table,
            [layout.parquet_batch(root, table.name, batch) for batch in batches],
            layout.migrated(root, table.name),
            layout.quarantine(root, table.name, f"migrate-{batches[0]}-{batches[-1]}"),
            publish=storage.publish,
        )
        yield dg.MaterializeResult(
            asset_key=migrated_key(table), metadata=_metadata(table, root, report, batches=", ".join(batches))
        )


migrated_assets = [migrated_snapshots, migrated_batches]
