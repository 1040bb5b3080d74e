"""The maintain stage: the upkeep of each selected Iceberg table, migrated and aggregate
(`teem_assets.maintenance`), reported with the table's shape before and after, so that the UI plots them over
time, and a warning check when what is left still passes the thresholds."""

from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark.sql import SparkSession

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import table_exists
from teem_assets.maintenance import TableShape, Thresholds, Upkeep, maintain
from teem_assets.migration import CREATED_DATE
from teem_assets.stages.report import AssetReport, CheckReport, StageReport, markdown, metadata, text
from teem_assets.stages.request import StageRequest

WITHIN_THRESHOLDS = "files_within_thresholds"
log = logging.getLogger("teem.maintain")


def asset_key(name: str) -> str:
    return f"maintenance/{name}"


def _table(spark: SparkSession, root: DataRoot, name: str) -> tuple[str, str, str]:
    """The table's identifier, its partition column and its name in the catalog."""
    if name in TABLES:
        return root.migrated_table(spark, name), CREATED_DATE, f"{root.migrated_database}.{name}"
    aggregate = AGGREGATES[name]
    return root.aggregate_table(spark, name), aggregate.partition_column, f"{root.aggregates_database}.{name}"


def _shape(shape: TableShape, when: str) -> dict[str, int]:
    return {
        f"data_files_{when}": shape.data_files,
        f"average_file_bytes_{when}": shape.average_file_bytes,
        f"small_files_{when}": shape.small_files,
        f"manifests_{when}": shape.manifests,
        f"snapshots_{when}": shape.snapshots,
        f"metadata_bytes_{when}": shape.metadata_bytes,
    }


def _asset_report(name: str, table_name: str, upkeep: Upkeep, seconds: float, **extra: object) -> AssetReport:
    assert upkeep.after is not None
    return AssetReport(
        asset_key(name),
        metadata(
            **extra,
            **_shape(upkeep.before, "before"),
            **_shape(upkeep.after, "after"),
            compacted_partitions=text(", ".join(upkeep.compacted_partitions) or "none"),
            data_files_rewritten=upkeep.data_files_rewritten,
            data_files_added=upkeep.data_files_added,
            manifests_rewritten=upkeep.manifests_rewritten,
            snapshots_expired=upkeep.snapshots_expired,
            data_files_deleted=upkeep.data_files_deleted,
            orphan_files_removed=upkeep.orphan_files_removed,
            seconds=round(seconds, 1),
            **{"dagster/table_name": table_name},
        ),
    )


def _check(name: str, shape: TableShape, thresholds: Thresholds) -> CheckReport:
    over = shape.over(thresholds)
    details = metadata(
        small_file_bytes=thresholds.small_file_bytes,
        small_files_per_partition=thresholds.small_files,
        manifests_threshold=thresholds.manifests,
        crowded_partitions=len(shape.crowded_partitions),
        manifests=shape.manifests,
        over_thresholds=markdown("\n".join(f"- {line}" for line in over) or "none"),
    )
    return CheckReport(asset_key(name), WITHIN_THRESHOLDS, not over, details, severity="WARN")


def run(spark: SparkSession, root: DataRoot, request: StageRequest) -> StageReport:
    thresholds = Thresholds(**request.settings["thresholds"])
    retention = dt.timedelta(days=root.snapshot_retention_days)
    report = StageReport()
    for name in request.tables:
        identifier, partition_column, table_name = _table(spark, root, name)
        if not table_exists(spark, identifier):  # a deployment's first days: nothing to maintain, nothing wrong
            absent = metadata(table=text(f"{table_name} does not exist yet"), **{"dagster/table_name": table_name})
            report.materializations.append(AssetReport(asset_key(name), absent))
            if request.wants(asset_key(name), WITHIN_THRESHOLDS):
                report.checks.append(CheckReport(asset_key(name), WITHIN_THRESHOLDS, True, absent, severity="WARN"))
            continue
        started = time.monotonic()
        upkeep = maintain(spark, identifier, partition_column, thresholds, retention)
        assert upkeep.after is not None
        log.info(f"{table_name}: {upkeep.before.data_files} -> {upkeep.after.data_files} data files")
        # the raw records quarantined at conversion and migration, personal data and all, past their retention
        extra = {"quarantine_files_removed": len(root.remove_expired_quarantine(name))} if name in TABLES else {}
        seconds = time.monotonic() - started
        report.materializations.append(_asset_report(name, table_name, upkeep, seconds, **extra))
        if request.wants(asset_key(name), WITHIN_THRESHOLDS):
            report.checks.append(_check(name, upkeep.after, thresholds))
    return report
