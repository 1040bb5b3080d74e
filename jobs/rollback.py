"""`rollback_job` (`teem rollback`): the migrated and aggregate tables back to their state before a batch's run,
or at a moment, and PostgreSQL made equal to them: facts by the keys the undone commits wrote, dimensions by
snapshot, aggregates by the days the undone commits replaced. Recorded as a run of its own whose observations
name, per table, the snapshot left and the one restored."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pydantic import Field

from resources.postgres import PostgresResource
from resources.storage import StorageResource
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.keys import aggregate_key, migrated_key, postgres_key
from teem_assets.catalogue import FACTS, TABLES, Table
from teem_assets.postgres.aggregates import export_since_last
from teem_assets.postgres.load import Fingerprint, fingerprinted, replace, table_fingerprint
from teem_assets.postgres.source import migrated_rows
from teem_assets.rollback import RollbackRefused, TablePlan, keys_written, plan_table, roll_back


class RollbackConfig(dg.Config):
    batch: str = Field(
        default="",
        description="A batch date (YYYY-MM-DD): the tables return to their state when the first run that migrated "
        "it started (every run of it is undone). Refused when another run published after that.",
    )
    to: str = Field(
        default="",
        description="A moment with its UTC offset (2019-09-03T08:00:00+00:00): the tables return to their state then.",
    )


@dataclass(frozen=True)
class Cutoff:
    moment: dt.datetime
    why: str
    batches_undone: list[str]


def _refused(reason: str) -> dg.Failure:
    return dg.Failure(description=f"rollback refused, nothing changed: {reason}", allow_retries=False)


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _refused(f"--to {text!r} is not a timestamp (YYYY-MM-DDTHH:MM:SS+00:00)") from None
    if moment.tzinfo is None:
        raise _refused(f"--to {text!r} has no UTC offset: say which time zone it is in (+00:00 for UTC)")
    return moment


def _batches_of(run: dg.DagsterRun) -> list[str]:
    first, last = run.tags.get(ASSET_PARTITION_RANGE_START_TAG), run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if first and last:
        day, end, found = dt.date.fromisoformat(first), dt.date.fromisoformat(last), []
        while day <= end:
            found.append(day.isoformat())
            day += dt.timedelta(days=1)
        return found
    return [run.tags["dagster/partition"]] if "dagster/partition" in run.tags else []


WRITTEN = [
    *[key(t) for t in TABLES.values() for key in (migrated_key, postgres_key)],
    *[key(a) for a in AGGREGATES.values() for key in (aggregate_key, postgres_key)],
]


def _cutoff_of_batch(instance: dg.DagsterInstance, batch: str) -> Cutoff:
    """When the first of the runs that migrated `batch` started (a batch run again, corrected or retried, has
    several); refused when a run that did not migrate it wrote a table after that."""
    runs: set[str] = set()
    for table in FACTS:
        filtered = dg.AssetRecordsFilter(asset_key=migrated_key(table), asset_partitions=[batch])
        runs |= {r.run_id for r in instance.fetch_materializations(filtered, limit=1000).records}
    if not runs:
        raise _refused(f"batch {batch} was never migrated on this Dagster instance")
    records = sorted(
        (r for r in instance.get_run_records(dg.RunsFilter(run_ids=sorted(runs)))),
        key=lambda r: r.start_time or r.create_timestamp.timestamp(),
    )
    first = records[0]
    started = first.start_time or first.create_timestamp.timestamp()
    later = set()
    for key in WRITTEN:
        filtered = dg.AssetRecordsFilter(asset_key=key, after_timestamp=started)
        later |= {r.run_id for r in instance.fetch_materializations(filtered, limit=1000).records}
    if later - runs:
        raise _refused(
            f"run(s) {', '.join(sorted(later - runs))} wrote tables after run {first.dagster_run.run_id} first "
            f"published batch {batch}; undoing it would undo them too: choose a moment with --to and run those "
            "batches again"
        )
    undone = sorted({b for r in records for b in _batches_of(r.dagster_run)})
    moment = dt.datetime.fromtimestamp(started, dt.UTC)
    return Cutoff(moment, f"the start of run {first.dagster_run.run_id}, the first to migrate {batch}", undone)


def _audited_by_fingerprint(table: Table, schema: str, sent: list[Fingerprint], keys=None):  # noqa: ANN001, ANN202
    def audit(cursor) -> bool:  # noqa: ANN001 - the load's cursor
        return table_fingerprint(cursor, table, schema, keys) == sent[0]

    return audit


def _equalize_table(storage: StorageResource, postgres: PostgresResource, table: Table, plan: TablePlan) -> int:
    """PostgreSQL's copy of a migrated table made equal to it where the undone commits wrote; the rows sent."""
    source = storage.data.iceberg_table(plan.database, table.name).refresh()
    sent = [Fingerprint()]
    connection = postgres.connect()
    try:
        if table.is_dimension:
            rows = fingerprinted(table, migrated_rows(source, table), sent)
            report = replace(
                connection,
                table,
                postgres.schema_name,
                rows,
                _audited_by_fingerprint(table, postgres.schema_name, sent),
            )
        else:
            keys = keys_written(source, table.primary_key[0], plan.written_after)
            rows = fingerprinted(table, migrated_rows(source, table, keys), sent)
            audit = _audited_by_fingerprint(table, postgres.schema_name, sent, keys)
            report = replace(connection, table, postgres.schema_name, rows, audit, keys)
    finally:
        connection.close()
    if not report.committed:
        raise dg.Failure(f"PostgreSQL's {table.name} does not match the rolled-back table after the load; rolled back")
    return report.rows_sent


@dg.op(description="Plan every table's rollback (refused before anything changes), move main, equalize PostgreSQL.")
def roll_back_tables(
    context: dg.OpExecutionContext, config: RollbackConfig, storage: StorageResource, postgres: PostgresResource
) -> Iterator[dg.AssetObservation | dg.Output]:
    if bool(config.batch) == bool(config.to):
        raise _refused("give exactly one of batch (--batch) and to (--to)")
    if config.batch:
        cutoff = _cutoff_of_batch(context.instance, config.batch)
    else:
        cutoff = Cutoff(_moment(config.to), f"--to {config.to}", [])
    data = storage.data
    targets = [(data.migrated_database, t.name, migrated_key(t)) for t in TABLES.values()]
    targets += [(data.aggregates_database, a.name, aggregate_key(a)) for a in AGGREGATES.values()]
    try:
        plans = [(plan_table(data.iceberg_table(db, name), db, name, cutoff.moment), key) for db, name, key in targets]
        for plan, _ in plans:
            roll_back(data.iceberg_table(plan.database, plan.name), plan)
    except RollbackRefused as refused:
        raise _refused(str(refused)) from refused
    context.log.info(f"tables at their state of {cutoff.moment.isoformat()} ({cutoff.why})")
    for plan, key in plans:
        if not plan.written_after:
            continue
        metadata: dict[str, object] = {
            "snapshot_left": str(plan.current),
            "snapshot_restored": str(plan.target),
            "commits_undone": len(plan.written_after),
        }
        if plan.database == data.migrated_database:
            metadata["postgres_rows_replaced"] = _equalize_table(storage, postgres, TABLES[plan.name], plan)
        else:
            aggregate = AGGREGATES[plan.name]
            connection = postgres.connect()
            try:
                export = export_since_last(
                    connection, aggregate, postgres.schema_name, data.iceberg_table(plan.database, plan.name)
                )
            finally:
                connection.close()
            replaced = "every value" if export.values is None else [v.isoformat() for v in export.values]
            metadata[f"postgres_{aggregate.partition_column}_values_replaced"] = dg.MetadataValue.json(replaced)
        yield dg.AssetObservation(asset_key=key, metadata={**metadata, "rolled_back_to": cutoff.moment.isoformat()})
    yield dg.Output(
        None,
        metadata={
            "rolled_back_to": cutoff.moment.isoformat(),
            "why": cutoff.why,
            "batches_undone": ", ".join(cutoff.batches_undone) or "those published after that moment",
            "tables_moved": ", ".join(f"{p.database}.{p.name}" for p, _ in plans if p.moves) or "none",
        },
    )


@dg.job(
    description="Undo publications: the migrated and aggregate tables back to their state before a batch's run "
    "(config batch) or at a moment (config to), PostgreSQL made equal to them. Run the undone batches again "
    "afterwards, corrected.",
    tags={"teem/kind": "rollback"},
)
def rollback_job() -> None:
    roll_back_tables()
