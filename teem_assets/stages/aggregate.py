"""The aggregate stage: agg_hourly_space and week_people_count recomputed for the values a run's batches
touch (all of them after a new dimension snapshot), each written in one commit."""

from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession

from teem_assets.aggregates.compute import compute, scope_values
from teem_assets.aggregates.inputs import read_warehouse
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.scope import batch_scope, dimensions_token
from teem_assets.aggregates.store import last_dimensions_token, write_partitions
from teem_assets.catalogue import FACTS, TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import current_snapshot_id, table_exists, total_records
from teem_assets.stages.report import AssetReport, StageReport, json_value, metadata, path
from teem_assets.stages.request import StageRequest

RECOMPUTED = "recomputed"
# The migrated tables' snapshot ids when the stage read them: the check tells a real difference from a race.
SNAPSHOTS_READ = "migrated_snapshots_read"
log = logging.getLogger("teem.aggregate")


def asset_key(aggregate: Aggregate) -> str:
    return f"aggregates/{aggregate.name}"


def _batch_files(root: DataRoot, batches: list[str]) -> dict[str, list[str]]:
    """The Parquet files of each fact table's converted batches among `batches`."""
    files: dict[str, list[str]] = {}
    for table in FACTS:
        found = [root.converted(table.name, b) for b in batches]
        files[table.name] = [uri for batch in found if batch is not None for uri in batch.uris]
    return files


def run(spark: SparkSession, root: DataRoot, request: StageRequest) -> StageReport:
    migrated = {name: root.migrated_table(spark, name) for name in TABLES}
    read_at = {name: current_snapshot_id(spark, identifier) for name, identifier in migrated.items()}
    warehouse = read_warehouse(spark, migrated)
    selected = [AGGREGATES[name] for name in request.tables]
    identifiers = {a.name: root.aggregate_table(spark, a.name) for a in selected}
    token = dimensions_token(spark, migrated)
    all_days = any(
        not table_exists(spark, identifiers[a.name]) or last_dimensions_token(spark, identifiers[a.name]) != token
        for a in selected
    )
    every_version = _batch_files(root, sorted({d for t in FACTS for d in root.converted_dates(t.name)}))
    scope = batch_scope(spark, _batch_files(root, request.batches), every_version, warehouse, all_days)
    report = StageReport()
    for aggregate in selected:
        started = time.monotonic()
        values = scope_values(aggregate, scope)
        identifier = identifiers[aggregate.name]
        rows = write_partitions(
            compute(aggregate, warehouse, scope), aggregate, identifier, values, token, log=log.warning
        )
        iceberg = root.iceberg_table(root.aggregates_database, aggregate.name)
        report.materializations.append(
            AssetReport(
                asset_key(aggregate),
                metadata(
                    **{
                        RECOMPUTED: json_value([v.isoformat() for v in values]),
                        f"{aggregate.partition_column}_values_recomputed": len(values),
                        "every_value_recomputed": all_days,
                        "rows_in_recomputed_partitions": rows,
                        "dagster/row_count": total_records(spark, identifier),
                        "seconds": round(time.monotonic() - started, 1),
                        "batches": ", ".join(request.batches),
                        "dagster/table_name": f"{root.aggregates_database}.{aggregate.name}",
                        "path": path(iceberg.location()),
                        SNAPSHOTS_READ: json_value({k: str(v) if v is not None else None for k, v in read_at.items()}),
                    }
                ),
            )
        )
    return report
