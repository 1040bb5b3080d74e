"""migrated/<table>: the current state as Iceberg tables (snapshot and incremental migration)."""

from collections.abc import Iterator

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.assets.keys import migrated_key, parquet_key, selected_tables
from teem_assets.assets.metadata import preview_rows, table_metadata
from teem_assets.assets.stage import COMMIT_RETRIES, layer_spec, stage
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.migration import MigrationReport, migrate_batches, replace_snapshot


def _spec(table: Table) -> dg.AssetSpec:
    if table.is_dimension:
        how = "replaced as a whole by the newest snapshot, in one commit (snapshot migration)"
    else:
        how = (
            f"each batch upserted with MERGE INTO by {', '.join(table.primary_key)}, the newest {table.updated_at} wins"
        )
    description = f"Current state of {table.name}: an Iceberg table partitioned by created_date; {how}"
    return layer_spec(table, migrated_key(table), parquet_key(table), "migrated", {"spark", "iceberg"}, description)


def _metadata(table: Table, storage: StorageResource, identifier: str, report: MigrationReport, **extra: object):  # noqa: ANN202
    iceberg = storage.iceberg_table(storage.migrated_database, table.name)
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
            "dagster/table_name": f"{storage.migrated_database}.{table.name}",
            "snapshot_id": str(iceberg.current_snapshot().snapshot_id) if iceberg.current_snapshot() else "none",
            "path": dg.MetadataValue.path(iceberg.location()),
            "preview": preview_rows(iceberg.scan(limit=5).to_arrow()),
            **extra,
        },
    )


@stage("migrated_snapshots", DIMENSIONS, _spec, retry_policy=COMMIT_RETRIES)
def migrated_snapshots(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    session = spark.session()
    for table in selected_tables(context, DIMENSIONS, migrated_key):
        identifier = storage.migrated_table(session, table.name)
        report = replace_snapshot(
            session,
            table,
            storage.converted_or_fail(table.name, "snapshot").uris,
            identifier,
            storage.quarantine(table.name, "migrate-snapshot"),
            log=context.log.warning,
        )
        yield dg.MaterializeResult(
            asset_key=migrated_key(table), metadata=_metadata(table, storage, identifier, report)
        )


@stage("migrated_batches", FACTS, _spec, retry_policy=COMMIT_RETRIES)
def migrated_batches(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    session = spark.session()
    batches = list(context.partition_keys)
    for table in selected_tables(context, FACTS, migrated_key):
        identifier = storage.migrated_table(session, table.name)
        files = [uri for batch in batches for uri in storage.converted_or_fail(table.name, batch).uris]
        report = migrate_batches(
            session,
            table,
            files,
            identifier,
            storage.quarantine(table.name, f"migrate-{batches[0]}-{batches[-1]}"),
            log=context.log.warning,
        )
        yield dg.MaterializeResult(
            asset_key=migrated_key(table),
            metadata=_metadata(table, storage, identifier, report, batches=", ".join(batches)),
        )


migrated_assets = [migrated_snapshots, migrated_batches]
