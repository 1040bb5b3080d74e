"""postgres/<table>: the migrated tables exported to PostgreSQL with COPY, each load checked against them
inside its own transaction, which commits only when the check passed."""

from collections.abc import Iterator

import dagster as dg

from resources.postgres import PostgresResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.held_back import refusing_short_batches
from teem_assets.assets.keys import migrated_key, postgres_key, selected_tables
from teem_assets.assets.stage import COMMIT_RETRIES, layer_spec, stage
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.postgres.keys import KeySet
from teem_assets.postgres.load import Audit, Fingerprint, LoadReport, fingerprinted, replace, table_fingerprint, upsert
from teem_assets.postgres.source import batch_keys, migrated_rows

CHECK = "matches_migrated"


def _spec(placement: Placement, table: Table) -> dg.AssetSpec:
    how = "replaced in one transaction" if table.is_dimension else "each batch upserted, the newest updated-at wins"
    description = f"{table.name} in PostgreSQL, loaded with COPY; {how}"
    return layer_spec(
        placement,
        table,
        postgres_key(table),
        migrated_key(table),
        {"postgres"},
        description,
        placement.postgres_uri,
        placement.postgres_table_name(table),
    )


def _check_specs(table: Table) -> list[dg.AssetCheckSpec]:
    spec = dg.AssetCheckSpec(
        CHECK,
        asset=postgres_key(table),
        blocking=True,
        description="The rows loaded (the batch's keys, or the whole dimension) equal the migrated table's in "
        "count and in a checksum over the primary key and updated-at: nothing lost, duplicated or stale. Read "
        "inside the load's transaction: a load that fails it is rolled back, and no reader sees it.",
    )
    return [spec]


def _fingerprint_metadata(fingerprint: Fingerprint) -> dict[str, int]:
    return {
        "rows": fingerprint.rows,
        "key_sum": fingerprint.key_sum,
        "updated_at_sum": fingerprint.updated_sum,
        "mixed_sum": fingerprint.mixed_sum,
    }


def _results(
    table: Table, postgres: PostgresResource, report: LoadReport, sent: Fingerprint, found: Fingerprint, **extra: object
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield dg.MaterializeResult(
        asset_key=postgres_key(table),
        metadata={
            "table": f"{postgres.schema_name}.{table.name}",
            "server": postgres.server(),
            "rows_sent": report.rows_sent,
            "rows_written": report.rows_written,
            "columns_added": ", ".join(report.columns_added) or "none",
            "committed": report.committed,
            **extra,
        },
    )
    yield dg.AssetCheckResult(
        asset_key=postgres_key(table),
        check_name=CHECK,
        passed=found == sent,
        metadata={
            "migrated": dg.MetadataValue.json(_fingerprint_metadata(sent)),
            "postgres": dg.MetadataValue.json(_fingerprint_metadata(found)),
        },
    )


def _matching(
    table: Table, schema: str, sent: list[Fingerprint], found: list[Fingerprint], keys: KeySet | None = None
) -> Audit:
    """The check as the load's audit: the table's rows (of `keys`) as the load left them, against what was sent."""

    def audit(cursor) -> bool:  # noqa: ANN001 - the load's cursor
        found[0] = table_fingerprint(cursor, table, schema, keys)
        return found[0] == sent[0]

    return audit


def postgres_snapshots(
    context: dg.AssetExecutionContext, postgres: PostgresResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    for table in selected_tables(context, DIMENSIONS, postgres_key):
        sent, found = [Fingerprint()], [Fingerprint()]
        source = storage.data.iceberg_table(storage.migrated_database, table.name)
        rows = fingerprinted(table, migrated_rows(source, table), sent)
        connection = postgres.connect()
        try:
            audit = _matching(table, postgres.schema_name, sent, found)
            report = replace(connection, table, postgres.schema_name, rows, audit)
        finally:
            connection.close()
        yield from _results(table, postgres, report, sent[0], found[0], **{"dagster/row_count": found[0].rows})


def postgres_batches(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    storage: StorageResource,
    thresholds: CheckThresholds,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    batches = refusing_short_batches(context, storage, thresholds)
    for table in selected_tables(context, FACTS, postgres_key):
        files = [uri for b in batches for uri in storage.data.converted_or_fail(table.name, b).uris]
        keys, dates = batch_keys(table, files)
        sent, found = [Fingerprint()], [Fingerprint()]
        source = storage.data.iceberg_table(storage.migrated_database, table.name)
        rows = fingerprinted(table, migrated_rows(source, table, keys, dates), sent)
        connection = postgres.connect()
        try:
            audit = _matching(table, postgres.schema_name, sent, found, keys)
            report = upsert(connection, table, postgres.schema_name, rows, keys, audit)
        finally:
            connection.close()
        count = {"dagster/row_count": found[0].rows}
        yield from _results(table, postgres, report, sent[0], found[0], batches=", ".join(batches), **count)


def postgres_assets(placement: Placement) -> list[dg.AssetsDefinition]:
    return [
        stage(placement, "postgres_snapshots", DIMENSIONS, _spec, checks=_check_specs, retry_policy=COMMIT_RETRIES)(
            postgres_snapshots
        ),
        stage(placement, "postgres_batches", FACTS, _spec, checks=_check_specs, retry_policy=COMMIT_RETRIES)(
            postgres_batches
        ),
    ]
