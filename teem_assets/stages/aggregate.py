"""The aggregate stage: agg_hourly_space and week_people_count recomputed for the values whose rows the fact
tables' commits changed since each was last computed (all of them after a new dimension snapshot), each
written in one commit: on the run's staged branch when the request names one (Dagster publishes it once the
reference check passed), otherwise on main."""

from __future__ import annotations

import json
import logging
import time

from pyspark.sql import SparkSession

from teem_assets.aggregates.compute import compute, scope_values
from teem_assets.aggregates.inputs import read_warehouse
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.scope import Scope, dimensions_token, every_day, scope_since
from teem_assets.aggregates.store import (
    ensure_aggregate_table,
    last_computation,
    stored_values,
    write_partitions,
)
from teem_assets.catalogue import DIMENSIONS, FACTS, TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import table_exists
from teem_assets.stages.report import AssetReport, StageReport, json_value, metadata, path
from teem_assets.stages.request import StageRequest
from teem_assets.staging import stage_branch
from teem_assets.table_state import (
    MAIN,
    branch_head,
    current_snapshot_id,
    data_snapshot_id,
    java_table,
    total_records,
)

RECOMPUTED = "recomputed"
# The migrated tables' snapshot ids when the stage read them: the check tells a real difference from a race.
SNAPSHOTS_READ = "migrated_snapshots_read"
STAGED_BRANCH = "staged_branch"
STAGED_SNAPSHOT = "staged_snapshot_id"  # what the reference check reads and Dagster publishes
log = logging.getLogger("teem.aggregate")


def asset_key(aggregate: Aggregate) -> str:
    return f"aggregates/{aggregate.name}"


def _last_computed(spark: SparkSession, identifier: str, token: str) -> str | dict[str, int | None] | None:
    """Why every day is due (a string), or the fact snapshots the table was last computed from."""
    last = last_computation(spark, identifier) if table_exists(spark, identifier) else None
    if last is None:
        return "the first computation"
    if last.dimensions_token != token:
        return "a new dimension snapshot"
    return last.fact_snapshots


def run(spark: SparkSession, root: DataRoot, request: StageRequest) -> StageReport:
    migrated = {name: root.migrated_table(spark, name) for name in TABLES}
    read_at = {name: current_snapshot_id(spark, identifier) for name, identifier in migrated.items()}
    facts_at = {table.name: read_at[table.name] for table in FACTS}
    warehouse = read_warehouse(spark, migrated, read_at)
    selected = [AGGREGATES[name] for name in request.tables]
    # Of the snapshots read, not of whatever is current a moment later; a compaction's commit is no new snapshot.
    token = dimensions_token(
        {t.name: data_snapshot_id(java_table(spark, migrated[t.name]), read_at[t.name]) for t in DIMENSIONS}
    )
    scopes: dict[str, Scope] = {}  # both aggregates last computed from the same snapshots share one scope
    report = StageReport()
    for aggregate in selected:
        started = time.monotonic()
        identifier = root.aggregate_table(spark, aggregate.name)
        last = _last_computed(spark, identifier, token)
        key = json.dumps(last, sort_keys=True)
        if key not in scopes:
            due = isinstance(last, str)
            scopes[key] = every_day(warehouse, last) if due else scope_since(spark, warehouse, migrated, last, facts_at)
        scope = scopes[key]
        values = scope_values(aggregate, scope)
        if scope.all_days:  # and the values that lost every row since: emptied in the table and in PostgreSQL
            values = sorted(set(values) | set(stored_values(spark, aggregate, identifier)))
        ensure_aggregate_table(spark, aggregate, identifier)
        branch = request.stage_to or MAIN
        target = stage_branch(spark, identifier, branch, root.staged_retention) if request.stage_to else identifier
        rows = write_partitions(
            compute(aggregate, warehouse, scope),
            aggregate,
            target,
            values,
            token,
            facts_at,
            log=log.warning,
        )
        root.maintain(spark, identifier)
        iceberg = root.iceberg_table(root.aggregates_database, aggregate.name)
        report.materializations.append(
            AssetReport(
                asset_key(aggregate),
                metadata(
                    **{
                        RECOMPUTED: json_value([v.isoformat() for v in values]),
                        f"{aggregate.partition_column}_values_recomputed": len(values),
                        "every_value_recomputed": scope.all_days,
                        "why_recomputed": scope.reason,
                        "rows_in_recomputed_partitions": rows,
                        "dagster/row_count": total_records(spark, identifier, branch),
                        "seconds": round(time.monotonic() - started, 1),
                        "batches": ", ".join(request.batches),
                        "dagster/table_name": f"{root.aggregates_database}.{aggregate.name}",
                        "path": path(iceberg.location()),
                        STAGED_BRANCH: branch,
                        STAGED_SNAPSHOT: str(branch_head(spark, identifier, branch)),
                        SNAPSHOTS_READ: json_value({k: str(v) if v is not None else None for k, v in read_at.items()}),
                    }
                ),
            )
        )
    return report
