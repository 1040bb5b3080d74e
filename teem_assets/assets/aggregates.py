"""aggregates/<name>: agg_hourly_space and week_people_count, recomputed for the days a run's batches
touch, each checked against the PostgreSQL reference SQL; postgres/<name>: their export."""

import datetime as dt
import os
import time
from collections.abc import Iterator

import dagster as dg

from resources.postgres import PostgresResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets import layout
from teem_assets.aggregates.compute import compute, scope_values
from teem_assets.aggregates.inputs import read_warehouse
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.scope import batch_scope, dimensions_token
from teem_assets.aggregates.store import partition_rows, write_partitions
from teem_assets.assets.keys import aggregate_key, migrated_key, postgres_key, selected_tables
from teem_assets.catalogue import FACTS, TABLES
from teem_assets.migration import parquet_rows
from teem_assets.partitions import batch_partitions
from teem_assets.postgres.aggregates import Comparison, compare_with_reference, replace_dates

CHECK = "matches_postgres_reference"
RECOMPUTED = "recomputed"
_TOKEN_FILE = "dimensions"


def _spec(aggregate: Aggregate) -> dg.AssetSpec:
    return dg.AssetSpec(
        aggregate_key(aggregate),
        # The PostgreSQL exports are deps too: the check's reference SQL reads them, so they load first.
        deps=[key(t) for t in TABLES.values() for key in (migrated_key, postgres_key)],
        description=f"{aggregate.name} (spec/AGGREGATES.md) in {aggregate.partition_column}= folders: partition D "
        f"recomputes the {aggregate.partition_column} values whose inputs batch D touched; a new dimension "
        "snapshot recomputes them all.",
        group_name="aggregates",
        kinds={"spark", "parquet"},
        partitions_def=batch_partitions,
    )


def _check_spec(aggregate: Aggregate) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK,
        asset=aggregate_key(aggregate),
        blocking=True,
        description="Spark's rows for the recomputed values equal, as a multiset, the reference SQL run in "
        "PostgreSQL over the exports of the migrated tables: any difference fails and the first ones are listed. "
        "It keeps a wrong aggregate (the predecessor's 0.4% and 7-hour shift) out of PostgreSQL.",
    )


def _last_token(storage: StorageResource, root: str, aggregate: Aggregate) -> str | None:
    path = os.path.join(storage.pull(layout.aggregate_state(root, aggregate.name)), _TOKEN_FILE)
    return open(path).read().strip() if os.path.exists(path) else None


def _save_token(storage: StorageResource, root: str, aggregate: Aggregate, token: str) -> None:
    folder = layout.aggregate_state(root, aggregate.name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, _TOKEN_FILE), "w") as file:
        file.write(token)
    storage.push(folder)


def _check_result(aggregate: Aggregate, comparison: Comparison) -> dg.AssetCheckResult:
    differences = [" | ".join(map(str, row)) for row in comparison.first_differences]
    return dg.AssetCheckResult(
        asset_key=aggregate_key(aggregate),
        check_name=CHECK,
        passed=comparison.equal,
        metadata={
            "spark_rows": comparison.spark_rows,
            "reference_rows": comparison.reference_rows,
            "only_in_spark": comparison.only_in_spark,
            "only_in_reference": comparison.only_in_reference,
            "first_differences": dg.MetadataValue.text("\n".join(differences) or "none"),
        },
    )


@dg.multi_asset(
    name="aggregates",
    specs=[_spec(a) for a in AGGREGATES.values()],
    check_specs=[_check_spec(a) for a in AGGREGATES.values()],
    can_subset=True,
    partitions_def=batch_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def aggregates(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, postgres: PostgresResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    root = storage.local_root
    for table in TABLES.values():
        storage.pull(layout.migrated(root, table.name))
    for table in FACTS:
        storage.pull(layout.parquet_table(root, table.name))
    session = spark.session()
    warehouse = read_warehouse(session, root)
    selected = selected_tables(context, list(AGGREGATES.values()), aggregate_key)
    token = dimensions_token(root)
    all_days = any(_last_token(storage, root, a) != token for a in selected)
    scope = batch_scope(session, root, list(context.partition_keys), warehouse, all_days)
    for aggregate in selected:
        started = time.monotonic()
        values = scope_values(aggregate, scope)
        target = layout.aggregate(root, aggregate.name)
        rows = write_partitions(
            compute(aggregate, warehouse, scope), aggregate, target, values, storage.publish, storage.remove
        )
        _save_token(storage, root, aggregate, token)
        yield dg.MaterializeResult(
            asset_key=aggregate_key(aggregate),
            metadata={
                RECOMPUTED: dg.MetadataValue.json([v.isoformat() for v in values]),
                f"{aggregate.partition_column}_values_recomputed": len(values),
                "every_value_recomputed": all_days,
                "rows_in_recomputed_partitions": rows,
                "dagster/row_count": parquet_rows(target),
                "seconds": round(time.monotonic() - started, 1),
                "batches": ", ".join(context.partition_keys),
                "path": dg.MetadataValue.path(target),
            },
        )
        if dg.AssetCheckKey(aggregate_key(aggregate), CHECK) in context.selected_asset_check_keys:
            connection = postgres.connect()
            try:
                rows_of_spark = partition_rows(target, aggregate, values)
                comparison = compare_with_reference(connection, aggregate, postgres.schema_name, values, rows_of_spark)
            finally:
                connection.close()
            yield _check_result(aggregate, comparison)


def _recomputed(context: dg.AssetExecutionContext, aggregate: Aggregate) -> list[str]:
    """The values the aggregate's latest materialization of each of the run's partitions recomputed."""
    partitions = list(context.partition_keys)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=aggregate_key(aggregate), asset_partitions=partitions),
        limit=10 * len(partitions),
    ).records
    newest: dict[str, list[str]] = {}
    for record in records:  # newest first
        materialization = record.asset_materialization
        if materialization is not None and materialization.partition not in newest:
            newest[materialization.partition] = materialization.metadata[RECOMPUTED].value
    return sorted({value for values in newest.values() for value in values})


def _export_spec(aggregate: Aggregate) -> dg.AssetSpec:
    return dg.AssetSpec(
        postgres_key(aggregate),
        deps=[aggregate_key(aggregate)],
        description=f"{aggregate.name} in PostgreSQL: the recomputed {aggregate.partition_column} values deleted "
        "and inserted again with COPY, in one transaction.",
        group_name="postgres",
        kinds={"postgres"},
        partitions_def=batch_partitions,
    )


@dg.multi_asset(
    name="postgres_aggregates",
    specs=[_export_spec(a) for a in AGGREGATES.values()],
    can_subset=True,
    partitions_def=batch_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def postgres_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    for aggregate in selected_tables(context, list(AGGREGATES.values()), postgres_key):
        values = [dt.date.fromisoformat(v) for v in _recomputed(context, aggregate)]
        target = storage.pull(layout.aggregate(storage.local_root, aggregate.name)) if values else ""
        connection = postgres.connect()
        try:
            rows = partition_rows(target, aggregate, values)
            inserted, total = replace_dates(connection, aggregate, postgres.schema_name, values, rows)
        finally:
            connection.close()
        yield dg.MaterializeResult(
            asset_key=postgres_key(aggregate),
            metadata={
                "table": f"{postgres.schema_name}.{aggregate.name}",
                f"{aggregate.partition_column}_values_replaced": len(values),
                "rows_inserted": inserted,
                "dagster/row_count": total,
                RECOMPUTED: dg.MetadataValue.json([v.isoformat() for v in values]),
            },
        )


aggregate_assets = [aggregates, postgres_aggregates]
