"""parquet/<table>: each unload converted to typed Parquet as it is, nothing merged, nothing lost.

One multi-asset per kind of table is one stage: every selected table and batch date of a run is converted
in a single Spark job.
"""

from collections import Counter
from collections.abc import Iterator

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets.assets.keys import parquet_key, raw_key, selected_tables
from teem_assets.assets.metadata import preview, table_metadata
from teem_assets.assets.stage import layer_spec, stage
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.checks.batch_checks import missing_companies, volume_verdict
from teem_assets.checks.snapshot_checks import shrink_verdict
from teem_assets.conversion import Conversion, ConversionRequest, convert
from teem_assets.settings import snapshot_shrink_threshold, trailing_batches, volume_threshold

MALFORMED_LOGGED = 10
VOLUME = "volume_vs_trailing_median"
COMPANIES = "companies_still_present"
SHRINK = "snapshot_not_shrunk"


def _requests(storage: StorageResource, tables: list[Table], batches: list[str]) -> list[ConversionRequest]:
    return [
        ConversionRequest(
            t, b, storage.raw(t.name, b), storage.parquet(t.name, b), storage.quarantine(t.name, b)
        )
        for t in tables
        for b in batches
    ]


def _convert(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, requests: list[ConversionRequest]
) -> list[Conversion]:
    done = convert(spark.session(), requests)
    for item in done:
        for bad in item.result.malformed_sample[:MALFORMED_LOGGED]:
            context.log.warning(f"quarantined {bad.describe()}")
    return done


def _metadata(table: Table, done: list[Conversion]) -> dict[str, object]:
    reasons: Counter[str] = Counter()
    notes = []
    pairs = [(c.request, c.result) for c in done]
    for unload, item in pairs:
        reasons.update(item.malformed_by_reason)
        source = "manifest" if item.unload.manifest else "newest parts by last-modified time"
        ignored = f"; ignored {', '.join(item.unload.ignored)}" if item.unload.ignored else ""
        notes.append(f"{unload.batch}: {len(item.unload.parts)} parts from the {source}{ignored}")
    rows = sum(item.rows for _, item in pairs)
    return table_metadata(
        table,
        **{
            "dagster/row_count": rows,
            "rows_read": sum(item.records for _, item in pairs),
            "rows_written": rows,
            "rows_quarantined": sum(item.malformed for _, item in pairs),
            "quarantined_by_reason": dg.MetadataValue.json(dict(reasons)),
            "files": sum(len(item.unload.parts) for _, item in pairs),
            "bytes": sum(item.bytes_read for _, item in pairs),
            "batches": ", ".join(unload.batch for unload, _ in pairs),
            "unloads": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes)),
            "path": dg.MetadataValue.path(pairs[0][0].parquet.rsplit("/", 1)[0]),
            "quarantine": dg.MetadataValue.path(pairs[0][0].quarantine.rsplit("/", 1)[0]),
            "preview": preview(done[-1].batch.uris),
        },
    )


def _results(tables: list[Table], done: list[Conversion]) -> Iterator[dg.MaterializeResult]:
    for table in tables:
        mine = [c for c in done if c.request.table is table]
        yield dg.MaterializeResult(asset_key=parquet_key(table), metadata=_metadata(table, mine))


def _spec(table: Table) -> dg.AssetSpec:
    what = "the newest complete snapshot" if table.is_dimension else "one daily batch"
    description = f"{what} of {table.name} as typed Parquet; malformed records in quarantine/{table.name}/"
    return layer_spec(table, parquet_key(table), raw_key(table), "parquet", {"spark", "parquet"}, description)


def _snapshot_check_specs(table: Table) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            SHRINK,
            asset=parquet_key(table),
            blocking=True,
            description="A snapshot that is empty, or holds less than TEEM_SNAPSHOT_SHRINK_THRESHOLD (0.9) of the "
            "current migrated table's rows, stops here: the migrated table and PostgreSQL keep what they have "
            "(an unload cut short would otherwise replace a whole dimension with less).",
        )
    ]


def _snapshot_checks(
    context: dg.AssetExecutionContext, storage: StorageResource, done: list[Conversion]
) -> Iterator[dg.AssetCheckResult]:
    threshold = snapshot_shrink_threshold()
    for item in done:
        key = parquet_key(item.request.table)
        if dg.AssetCheckKey(key, SHRINK) not in context.selected_asset_check_keys:
            continue
        verdict = shrink_verdict(item.batch.rows, storage.migrated_row_count(item.request.table.name), threshold)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=SHRINK,
            passed=verdict.passed,
            metadata={
                "snapshot_rows": verdict.snapshot_rows,
                "current_rows": verdict.current_rows if verdict.current_rows is not None else "no table yet",
                "threshold": threshold,
                "verdict": verdict.describe(),
            },
        )


@stage("parquet_snapshots", DIMENSIONS, _spec, checks=_snapshot_check_specs)
def parquet_snapshots(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    tables = selected_tables(context, DIMENSIONS, parquet_key)
    done = _convert(context, spark, storage, _requests(storage, tables, ["snapshot"]))
    yield from _results(tables, done)
    yield from _snapshot_checks(context, storage, done)


def _batch_check_specs(table: Table) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            VOLUME,
            asset=parquet_key(table),
            blocking=True,
            description="Each batch holds at least TEEM_VOLUME_THRESHOLD (0.95) of the median row count of the "
            "TEEM_TRAILING_BATCHES (7) batches before it. It keeps a short or half-written unload out of the "
            "migrated tables, PostgreSQL and the aggregates (the predecessor's lapsed 95% pre-check). The first "
            "batches pass with a note.",
        )
    ]
    if table.company_column:
        specs.append(
            dg.AssetCheckSpec(
                COMPANIES,
                asset=parquet_key(table),
                description="Warns, with the list, about companies seen in the batches before this one but absent "
                "from it: a customer whose events stopped arriving upstream, which totals alone would hide.",
            )
        )
    return specs


def _batch_checks(
    context: dg.AssetExecutionContext, storage: StorageResource, tables: list[Table], batches: list[str]
) -> Iterator[dg.AssetCheckResult]:
    window, threshold = trailing_batches(), volume_threshold()
    for table in tables:
        key = parquet_key(table)
        folder = storage.parquet_table(table.name)
        if dg.AssetCheckKey(key, VOLUME) in context.selected_asset_check_keys:
            verdicts = [volume_verdict(folder, batch, window, threshold) for batch in batches]
            short = [v.batch for v in verdicts if not v.passed]
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=VOLUME,
                passed=not short,
                metadata={
                    "threshold": threshold,
                    "short_batches": ", ".join(short) or "none",
                    "batches": dg.MetadataValue.md("\n".join(f"- {v.describe()}" for v in verdicts)),
                },
            )
        if dg.AssetCheckKey(key, COMPANIES) in context.selected_asset_check_keys:
            missing = {batch: missing_companies(folder, batch, window) for batch in batches}
            missing = {batch: companies for batch, companies in missing.items() if companies}
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=COMPANIES,
                passed=not missing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "missing_companies": dg.MetadataValue.json({b: [str(c) for c in cs] for b, cs in missing.items()}),
                    "batches_with_missing_companies": len(missing),
                },
            )


@stage("parquet_batches", FACTS, _spec, checks=_batch_check_specs)
def parquet_batches(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    tables = selected_tables(context, FACTS, parquet_key)
    batches = list(context.partition_keys)
    yield from _results(tables, _convert(context, spark, storage, _requests(storage, tables, batches)))
    yield from _batch_checks(context, storage, tables, batches)


parquet_assets = [parquet_snapshots, parquet_batches]
