"""parquet/<table>: each unload converted to typed Parquet as it is, nothing merged, nothing lost.

One multi-asset per kind of table is one stage: every selected table and batch date of a run is converted
in a single Spark job.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from teem_assets import layout
from teem_assets.assets.keys import parquet_key, raw_key, selected_tables
from teem_assets.assets.metadata import preview, table_metadata
from teem_assets.assets.stage import layer_spec, stage
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.checks.batch_checks import missing_companies, volume_verdict
from teem_assets.publish import staging_dir
from teem_assets.settings import trailing_batches, volume_threshold
from teem_assets.unload.spark_reader import ConvertedUnload, UnloadConversion, convert_unloads

MALFORMED_LOGGED = 10
VOLUME = "volume_vs_trailing_median"
COMPANIES = "companies_still_present"


@dataclass(frozen=True)
class _Unload:
    table: Table
    batch: str  # a batch date, or "snapshot"
    raw: str
    parquet: str
    quarantine: str


def _unloads(root: str, tables: list[Table], batches: list[str]) -> list[_Unload]:
    found = []
    for table in tables:
        for batch in batches:
            if table.is_dimension:
                raw, parquet = layout.raw_snapshot(root, table.name), layout.parquet_snapshot(root, table.name)
            else:
                raw, parquet = layout.raw_batch(root, table.name, batch), layout.parquet_batch(root, table.name, batch)
            found.append(_Unload(table, batch, raw, parquet, layout.quarantine(root, table.name, batch)))
    return found


def _convert(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, unloads: list[_Unload]
) -> list[ConvertedUnload]:
    conversions = []
    for unload in unloads:
        storage.pull(unload.raw)
        columns = unload.table.typed_columns
        conversions.append(
            UnloadConversion(unload.raw, columns, staging_dir(unload.parquet), staging_dir(unload.quarantine))
        )
    converted = convert_unloads(spark.session(), conversions)
    for unload, item in zip(unloads, converted):
        storage.publish(item.conversion.out_dir, unload.parquet)
        storage.publish(item.conversion.quarantine_dir, unload.quarantine)
        for bad in item.malformed_sample[:MALFORMED_LOGGED]:
            context.log.warning(f"quarantined {bad.describe()}")
    return converted


def _metadata(table: Table, pairs: list[tuple[_Unload, ConvertedUnload]]) -> dict[str, object]:
    reasons: Counter[str] = Counter()
    notes = []
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
            "preview": preview(pairs[-1][0].parquet),
        },
    )


def _results(
    tables: list[Table], unloads: list[_Unload], converted: list[ConvertedUnload]
) -> Iterator[dg.MaterializeResult]:
    for table in tables:
        pairs = [(u, c) for u, c in zip(unloads, converted) if u.table is table]
        yield dg.MaterializeResult(asset_key=parquet_key(table), metadata=_metadata(table, pairs))


def _spec(table: Table) -> dg.AssetSpec:
    what = "the newest complete snapshot" if table.is_dimension else "one daily batch"
    description = f"{what} of {table.name} as typed Parquet; malformed records in quarantine/{table.name}/"
    return layer_spec(table, parquet_key(table), raw_key(table), "parquet", {"spark", "parquet"}, description)


@stage("parquet_snapshots", DIMENSIONS, _spec)
def parquet_snapshots(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource
) -> Iterator[dg.MaterializeResult]:
    tables = selected_tables(context, DIMENSIONS, parquet_key)
    unloads = _unloads(storage.local_root, tables, ["snapshot"])
    yield from _results(tables, unloads, _convert(context, spark, storage, unloads))


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
    context: dg.AssetExecutionContext, root: str, tables: list[Table], batches: list[str]
) -> Iterator[dg.AssetCheckResult]:
    window, threshold = trailing_batches(), volume_threshold()
    for table in tables:
        key = parquet_key(table)
        if dg.AssetCheckKey(key, VOLUME) in context.selected_asset_check_keys:
            verdicts = [volume_verdict(root, table.name, batch, window, threshold) for batch in batches]
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
            missing = {batch: missing_companies(root, table, batch, window) for batch in batches}
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
    root = storage.local_root
    tables = selected_tables(context, FACTS, parquet_key)
    batches = list(context.partition_keys)
    unloads = _unloads(root, tables, batches)
    yield from _results(tables, unloads, _convert(context, spark, storage, unloads))
    for table in tables:
        storage.pull(layout.parquet_table(root, table.name))  # the earlier batches the checks compare with
    yield from _batch_checks(context, root, tables, batches)


parquet_assets = [parquet_snapshots, parquet_batches]
