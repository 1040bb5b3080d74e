"""aggregates/<name>: agg_hourly_space and week_people_count, recomputed for the days a run's batches
touch on the run's staged branch, checked there against the PostgreSQL reference SQL, and published (main
fast-forwarded to it) only when the check passed; postgres/<name>: their export, from main."""

import datetime as dt
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg

from resources.postgres import PostgresResource
from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.aggregates.store import partition_rows
from teem_assets.assets.conventions import Placement, conventions
from teem_assets.assets.keys import aggregate_key, migrated_key, postgres_key, selected_tables
from teem_assets.assets.stage import COMMIT_RETRIES, pool_of, stage_request
from teem_assets.catalogue import TABLES
from teem_assets.postgres.aggregates import EXPORTED, Comparison, compare_with_reference, export_since_last
from teem_assets.postgres.load import fingerprint_of_rows, postgres_fingerprint
from teem_assets.postgres.source import migrated_rows
from teem_assets.stages.aggregate import RECOMPUTED, SNAPSHOTS_READ, STAGED_SNAPSHOT
from teem_assets.staging import PublishConflict, publish, staged_branch

CHECK = "matches_postgres_reference"


def _spec(placement: Placement, aggregate: Aggregate) -> dg.AssetSpec:
    database = placement.aggregates_database
    return dg.AssetSpec(
        aggregate_key(aggregate),
        # The PostgreSQL exports are deps too: the check's reference SQL reads them, so they load first.
        deps=[key(t) for t in TABLES.values() for key in (migrated_key, postgres_key)],
        description=f"{aggregate.name} (spec/AGGREGATES.md), an Iceberg table partitioned by "
        f"{aggregate.partition_column}: partition D "
        f"recomputes the {aggregate.partition_column} values whose inputs batch D touched; a new dimension "
        "snapshot recomputes them all.",
        partitions_def=placement.partitions,
        **conventions(
            placement,
            "aggregates",
            aggregate,
            {placement.compute_kind, "iceberg", placement.storage_kind},
            placement.iceberg_uri(database, aggregate.name),
            f"{database}.{aggregate.name}",
        ),
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


def _check_result(aggregate: Aggregate, comparison: Comparison, branch: str, staged: int) -> dg.AssetCheckResult:
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
            "staged_branch": branch,  # what was checked: left unpublished, for inspection, when it failed
            "staged_snapshot_id": str(staged),
        },
    )


def aggregates(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, postgres: PostgresResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    selected = [a.name for a in selected_tables(context, list(AGGREGATES.values()), aggregate_key)]
    branch = staged_branch(context.run.run_id)
    request = stage_request(context, storage, "aggregate", selected, context.partition_keys, stage_to=branch)
    staged_results: list[dg.MaterializeResult] = []
    for result in spark.run_stage(context, storage, request):
        if not isinstance(result, dg.MaterializeResult) or result.asset_key is None:
            yield result
            continue
        staged_results.append(result)
    checks = _checks(context, storage, postgres, branch, staged_results)
    for result in staged_results:
        aggregate = AGGREGATES[result.asset_key.path[-1]]
        metadata = dict(result.metadata or {})
        staged = int(_value(metadata[STAGED_SNAPSHOT]))
        check = checks.get(result.asset_key)
        published = check is None or check.passed
        if published:
            _publish(context, storage, aggregate, branch, staged)
        yield dg.MaterializeResult(asset_key=result.asset_key, metadata={**metadata, "published": published})
        if check is not None:
            yield check


def _checks(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    postgres: PostgresResource,
    branch: str,
    staged: list[dg.MaterializeResult],
) -> dict[dg.AssetKey, dg.AssetCheckResult]:
    """The reference check of each staged aggregate whose check is selected, all at once, each on a connection
    of its own: each is one PostgreSQL query at a time, and the smaller's ends within the larger's."""
    selected = [r for r in staged if dg.AssetCheckKey(r.asset_key, CHECK) in context.selected_asset_check_keys]
    if not selected:
        return {}

    def check(result: dg.MaterializeResult) -> dg.AssetCheckResult:
        metadata = dict(result.metadata or {})
        aggregate = AGGREGATES[result.asset_key.path[-1]]
        snapshot = int(_value(metadata[STAGED_SNAPSHOT]))
        return _check(context, storage, postgres, aggregate, metadata, branch, snapshot)

    with ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="aggregate-check") as pool:
        return dict(zip([r.asset_key for r in selected], pool.map(check, selected)))


def _publish(
    context: dg.AssetExecutionContext, storage: StorageResource, aggregate: Aggregate, branch: str, staged: int
) -> None:
    """Main fast-forwarded to what the check passed; when another run published first, the step runs again
    from the new main (the same optimistic-concurrency retry as a commit's)."""
    table = storage.data.iceberg_table(storage.aggregates_database, aggregate.name)
    try:
        publish(table, branch, staged)
    except PublishConflict as conflict:
        context.log.warning(f"{conflict}: computing again from it")
        raise dg.RetryRequested(max_retries=3, seconds_to_wait=5) from conflict


def _check(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    postgres: PostgresResource,
    aggregate: Aggregate,
    metadata: Mapping[str, object],
    branch: str,
    staged: int,
) -> dg.AssetCheckResult:
    """The reference check of the staged snapshot: what publishing would make current."""
    values = [dt.date.fromisoformat(v) for v in _value(metadata[RECOMPUTED])]
    iceberg = storage.data.iceberg_table(storage.aggregates_database, aggregate.name)
    connection = postgres.connect()
    try:
        comparison = compare_with_reference(
            connection, aggregate, postgres.schema_name, values, partition_rows(iceberg, aggregate, values, staged)
        )
        if not comparison.equal:
            _retry_while_inputs_move(
                context, storage, connection, postgres.schema_name, _value(metadata[SNAPSHOTS_READ])
            )
    finally:
        connection.close()
    return _check_result(aggregate, comparison, branch, staged)


def _value(entry: object) -> Any:
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def _snapshots(storage: StorageResource) -> dict[str, str | None]:
    now = {}
    for name in TABLES:
        snapshot = storage.data.iceberg_table(storage.migrated_database, name).current_snapshot()
        now[name] = str(snapshot.snapshot_id) if snapshot else None
    return now


def _retry_while_inputs_move(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    connection,  # noqa: ANN001 - psycopg2 connection
    schema: str,
    read_at: dict[str, str | None],
) -> None:
    """A difference means nothing while another run is writing: when a migrated table changed after the stage
    read it, or PostgreSQL's export of one differs from it while another run is unfinished (it has migrated
    a batch and not yet exported it: the reference SQL reads the exports), the step runs again, from main,
    once they have settled. Otherwise the difference stands: an export changed behind the pipeline's back is
    what the check exists to catch, and running again would only find it again."""
    now = _snapshots(storage)
    moved = [name for name in TABLES if now[name] != read_at.get(name)]
    if moved:
        context.log.warning(f"{', '.join(moved)} changed while the aggregates were checked: running again")
        raise dg.RetryRequested(max_retries=10, seconds_to_wait=15)
    unexported = [
        name
        for name, table in TABLES.items()
        if fingerprint_of_rows(table, migrated_rows(storage.data.iceberg_table(storage.migrated_database, name), table))
        != postgres_fingerprint(connection, table, schema)
    ]
    if not unexported:
        return
    writers = writers_of(context.instance, context.run.run_id, unexported)
    if writers:
        context.log.warning(
            f"PostgreSQL's {', '.join(unexported)} differ from the migrated tables while run(s) "
            f"{', '.join(writers)}, which write them, are unfinished: running again once they have exported"
        )
        raise dg.RetryRequested(max_retries=10, seconds_to_wait=15)
    context.log.error(
        f"PostgreSQL's {', '.join(unexported)} differ from the migrated tables and no other run is writing them: "
        "a migrated partition materialized without its postgres/ export (materialize those exports), or rows "
        "changed behind the pipeline's back"
    )


UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def writers_of(instance: dg.DagsterInstance, this_run: str, tables: list[str]) -> list[str]:
    """The unfinished runs but `this_run` that plan to write the migrated tables `tables` or their exports (Dagster
    records a run's planned materializations when it creates the run, queued or not): a freshness run or an
    aggregate-only run is not waited for."""
    keys = {key(TABLES[name]) for name in tables for key in (migrated_key, postgres_key)}
    writers = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED), limit=50):
        if run.run_id == this_run:
            continue
        planned = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        if any(entry.dagster_event and entry.dagster_event.asset_key in keys for entry in planned):
            writers.append(run.run_id)
    return writers


def _export_spec(placement: Placement, aggregate: Aggregate) -> dg.AssetSpec:
    return dg.AssetSpec(
        postgres_key(aggregate),
        deps=[aggregate_key(aggregate)],
        description=f"{aggregate.name} in PostgreSQL: the {aggregate.partition_column} values the Iceberg commits "
        "since the last export replaced, deleted and inserted again with COPY, in one transaction that also "
        f"records the snapshot exported ({EXPORTED}): an export that was killed or failed is caught up by the "
        "next.",
        partitions_def=placement.partitions,
        **conventions(
            placement,
            "postgres",
            aggregate,
            {"postgres"},
            placement.postgres_uri,
            placement.postgres_table_name(aggregate),
            code="postgres_aggregates",
        ),
    )


def postgres_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    for aggregate in selected_tables(context, list(AGGREGATES.values()), postgres_key):
        source = storage.data.iceberg_table(storage.aggregates_database, aggregate.name)
        connection = postgres.connect()
        try:
            export = export_since_last(connection, aggregate, postgres.schema_name, source)
        finally:
            connection.close()
        replaced = "every value" if export.values is None else [v.isoformat() for v in export.values]
        yield dg.MaterializeResult(
            asset_key=postgres_key(aggregate),
            metadata={
                "table": f"{postgres.schema_name}.{aggregate.name}",
                f"{aggregate.partition_column}_values_replaced": dg.MetadataValue.json(replaced),
                "rows_inserted": export.rows_inserted,
                "dagster/row_count": export.rows,
                "iceberg_snapshot_id": str(export.snapshot_id),
            },
        )


def aggregate_assets(placement: Placement) -> list[dg.AssetsDefinition]:
    daily = {
        "can_subset": True,
        "partitions_def": placement.partitions,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "retry_policy": COMMIT_RETRIES,
    }
    return [
        dg.multi_asset(
            name="aggregates",
            specs=[_spec(placement, a) for a in AGGREGATES.values()],
            check_specs=[_check_spec(a) for a in AGGREGATES.values()],
            pool=pool_of("aggregates"),
            **daily,
        )(aggregates),
        dg.multi_asset(
            name="postgres_aggregates",
            specs=[_export_spec(placement, a) for a in AGGREGATES.values()],
            pool=pool_of("postgres_aggregates"),
            **daily,
        )(postgres_aggregates),
    ]
