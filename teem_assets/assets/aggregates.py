"""aggregates/<name>: agg_hourly_space and week_people_count, recomputed for the days a run's batches
touch, each checked against the PostgreSQL reference SQL; postgres/<name>: their export."""

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg
from pyspark.sql import SparkSession

from resources.postgres import PostgresResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.aggregates.compute import compute, scope_values
from teem_assets.aggregates.inputs import read_warehouse
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.scope import batch_scope, dimensions_token
from teem_assets.aggregates.store import last_dimensions_token, partition_rows, write_partitions
from teem_assets.assets.keys import aggregate_key, migrated_key, postgres_key, selected_tables
from teem_assets.assets.stage import COMMIT_RETRIES, pool_of
from teem_assets.catalogue import FACTS, TABLES
from teem_assets.iceberg import current_snapshot_id, table_exists, total_records
from teem_assets.partitions import batch_partitions
from teem_assets.postgres.aggregates import Comparison, compare_with_reference, replace_dates
from teem_assets.postgres.load import fingerprint_of_rows, postgres_fingerprint
from teem_assets.postgres.source import migrated_rows

CHECK = "matches_postgres_reference"
RECOMPUTED = "recomputed"


def _spec(aggregate: Aggregate) -> dg.AssetSpec:
    return dg.AssetSpec(
        aggregate_key(aggregate),
        # The PostgreSQL exports are deps too: the check's reference SQL reads them, so they load first.
        deps=[key(t) for t in TABLES.values() for key in (migrated_key, postgres_key)],
        description=f"{aggregate.name} (spec/AGGREGATES.md), an Iceberg table partitioned by "
        f"{aggregate.partition_column}: partition D "
        f"recomputes the {aggregate.partition_column} values whose inputs batch D touched; a new dimension "
        "snapshot recomputes them all.",
        group_name="aggregates",
        kinds={"spark", "iceberg"},
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


def _batch_files(storage: StorageResource, batches: list[str]) -> dict[str, list[str]]:
    """The Parquet files of each fact table's converted batches among `batches`."""
    files: dict[str, list[str]] = {}
    for table in FACTS:
        found = [storage.converted(table.name, b) for b in batches]
        files[table.name] = [uri for batch in found if batch is not None for uri in batch.uris]
    return files


@dg.multi_asset(
    name="aggregates",
    specs=[_spec(a) for a in AGGREGATES.values()],
    check_specs=[_check_spec(a) for a in AGGREGATES.values()],
    can_subset=True,
    partitions_def=batch_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=pool_of("aggregates"),
    retry_policy=COMMIT_RETRIES,
)
def aggregates(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, postgres: PostgresResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    session = spark.session()
    migrated = {name: storage.migrated_table(session, name) for name in TABLES}
    read_at = _snapshots(session, migrated)  # before the tables are read: a commit in between shows as a change
    warehouse = read_warehouse(session, migrated)
    selected = selected_tables(context, list(AGGREGATES.values()), aggregate_key)
    identifiers = {a.name: storage.aggregate_table(session, a.name) for a in selected}
    token = dimensions_token(session, migrated)
    all_days = any(
        not table_exists(session, identifiers[a.name]) or last_dimensions_token(session, identifiers[a.name]) != token
        for a in selected
    )
    batches = list(context.partition_keys)
    every_version = _batch_files(storage, sorted({d for t in FACTS for d in storage.converted_dates(t.name)}))
    scope = batch_scope(session, _batch_files(storage, batches), every_version, warehouse, all_days)
    for aggregate in selected:
        started = time.monotonic()
        values = scope_values(aggregate, scope)
        identifier = identifiers[aggregate.name]
        rows = write_partitions(
            compute(aggregate, warehouse, scope), aggregate, identifier, values, token, log=context.log.warning
        )
        iceberg = storage.iceberg_table(storage.aggregates_database, aggregate.name)
        yield dg.MaterializeResult(
            asset_key=aggregate_key(aggregate),
            metadata={
                RECOMPUTED: dg.MetadataValue.json([v.isoformat() for v in values]),
                f"{aggregate.partition_column}_values_recomputed": len(values),
                "every_value_recomputed": all_days,
                "rows_in_recomputed_partitions": rows,
                "dagster/row_count": total_records(session, identifier),
                "seconds": round(time.monotonic() - started, 1),
                "batches": ", ".join(batches),
                "dagster/table_name": f"{storage.aggregates_database}.{aggregate.name}",
                "path": dg.MetadataValue.path(iceberg.location()),
            },
        )
        if dg.AssetCheckKey(aggregate_key(aggregate), CHECK) in context.selected_asset_check_keys:
            connection = postgres.connect()
            try:
                rows_of_spark = partition_rows(iceberg, aggregate, values)
                comparison = compare_with_reference(connection, aggregate, postgres.schema_name, values, rows_of_spark)
                if not comparison.equal:
                    _retry_while_inputs_move(
                        context, session, storage, connection, postgres.schema_name, migrated, read_at
                    )
            finally:
                connection.close()
            yield _check_result(aggregate, comparison)


def _snapshots(session: SparkSession, migrated: dict[str, str]) -> dict[str, int | None]:
    return {name: current_snapshot_id(session, identifier) for name, identifier in migrated.items()}


def _retry_while_inputs_move(
    context: dg.AssetExecutionContext,
    session: SparkSession,
    storage: StorageResource,
    connection,  # noqa: ANN001 - psycopg2 connection
    schema: str,
    migrated: dict[str, str],
    read_at: dict[str, int | None],
) -> None:
    """A difference means nothing while another run is writing: when a migrated table changed after this step
    read it, or another run has migrated a batch and not yet exported it (the reference SQL reads the
    exports), the step runs again once they have settled. Otherwise the difference stands."""
    now = _snapshots(session, migrated)
    lagging = [name for name in migrated if now[name] != read_at[name]] or [
        name
        for name, table in TABLES.items()
        if fingerprint_of_rows(table, migrated_rows(storage.iceberg_table(storage.migrated_database, name), table))
        != postgres_fingerprint(connection, table, schema)
    ]
    if lagging:
        context.log.warning(f"{', '.join(lagging)} changed while the aggregates were checked: running again")
        raise dg.RetryRequested(max_retries=10, seconds_to_wait=15)


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
    pool=pool_of("postgres_aggregates"),
    retry_policy=COMMIT_RETRIES,
)
def postgres_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    for aggregate in selected_tables(context, list(AGGREGATES.values()), postgres_key):
        values = [dt.date.fromisoformat(v) for v in _recomputed(context, aggregate)]
        source = storage.iceberg_table(storage.aggregates_database, aggregate.name)
        connection = postgres.connect()
        try:
            rows = partition_rows(source, aggregate, values)
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
