"""The migrate stage: the Parquet layer into the migrated Iceberg tables (snapshot replace or batch MERGE). A
snapshot the writer refuses (empty, or shrunk) is a failure of its table; the other tables go on."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from teem_assets.catalogue import TABLES, Table
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import table_exists
from teem_assets.migration import (
    MigrationReport,
    ShrinkGuard,
    SnapshotRefused,
    migrate_batches,
    migrated_schema,
    replace_snapshot,
)
from teem_assets.stages.metadata import column_schema, table_preview
from teem_assets.stages.report import AssetReport, StageReport, metadata, path, text
from teem_assets.stages.request import StageRequest
from teem_assets.table_evolution import SchemaChangeRefused, current_schema, planned_change

log = logging.getLogger("teem.migrate")


def asset_key(table: Table) -> str:
    return f"migrated/{table.name}"


def _asset_report(root: DataRoot, table: Table, report: MigrationReport, **extra: object) -> AssetReport:
    iceberg = root.iceberg_table(root.migrated_database, table.name)
    snapshot = iceberg.current_snapshot()
    return AssetReport(
        asset_key(table),
        metadata(
            **{
                "dagster/column_schema": column_schema(table),
                "dagster/row_count": report.table_rows,
                "rows_read": report.rows_in,
                "rows_quarantined": report.rows_rejected,
                "keys_updated": report.keys_updated,
                "duplicates_dropped": report.duplicates_dropped,
                "partitions_written": len(report.partitions),
                "rows_in_partitions_written": report.rows_in_partitions,
                "created_dates": text(", ".join(report.partitions[:50])),
                "dagster/table_name": f"{root.migrated_database}.{table.name}",
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "none",
                "path": path(iceberg.location()),
                "preview": table_preview(iceberg, table.personal_columns),
                **extra,
            }
        ),
    )


def refused_schema_changes(spark: SparkSession, root: DataRoot, tables: list[Table]) -> list[str]:
    """The catalogue changes no selected table can take (`table_evolution`), each naming its columns and types."""
    refused = []
    for table in tables:
        identifier = root.migrated_table(spark, table.name)
        if table_exists(spark, identifier):
            try:
                planned_change(current_schema(spark, identifier), migrated_schema(table), identifier)
            except SchemaChangeRefused as error:
                refused.append(str(error))
    return refused


def blocked_batches(root: DataRoot, table: Table, batches: list[str]) -> str | None:
    """Why the table's batches are refused: rows of some break a blocking rule of the catalogue (the check
    `catalogue_rules` of its Parquet asset names them); None when none does."""
    blocked = {b: found.blocked for b in batches if (found := root.converted_or_fail(table.name, b)).blocked}
    if not blocked:
        return None
    broken = "; ".join(f"{batch}: {', '.join(rules)}" for batch, rules in blocked.items())
    return f"{table.name}: not migrated, its rows break blocking rules of the catalogue ({broken}); fix the unload"


def run(spark: SparkSession, root: DataRoot, request: StageRequest) -> StageReport:
    report = StageReport()
    batches = request.batches
    tables = [TABLES[name] for name in request.tables]
    report.failures = refused_schema_changes(spark, root, tables)
    if report.failures:  # before any table changes
        return report
    for table in tables:
        refused = blocked_batches(root, table, ["snapshot"] if table.is_dimension else batches)
        if refused:
            report.failures.append(refused)
            continue
        identifier = root.migrated_table(spark, table.name)
        if table.is_dimension:
            files = root.converted_or_fail(table.name, "snapshot").uris
            guard = ShrinkGuard(
                float(request.settings.get("snapshot_shrink_threshold", ShrinkGuard.threshold)),
                table.name in request.settings.get("accept_shrink", []),
            )
            quarantine = root.quarantine(table.name, "migrate-snapshot")
            try:
                done = replace_snapshot(spark, table, files, identifier, quarantine, log=log.warning, guard=guard)
            except SnapshotRefused as refused:
                report.failures.append(str(refused))
                continue
            root.maintain(spark, identifier)
            extra = {"rows_before": done.rows_before if done.rows_before is not None else "none"}
            if done.shrink_accepted:
                extra["shrink_accepted"] = "accepted for this run (config accept_shrink)"
            report.materializations.append(_asset_report(root, table, done, **extra))
        else:
            files = [uri for batch in batches for uri in root.converted_or_fail(table.name, batch).uris]
            quarantine = root.quarantine(table.name, f"migrate-{batches[0]}-{batches[-1]}")
            done = migrate_batches(spark, table, files, identifier, quarantine, log=log.warning)
            root.maintain(spark, identifier)
            report.materializations.append(_asset_report(root, table, done, batches=", ".join(batches)))
    return report
