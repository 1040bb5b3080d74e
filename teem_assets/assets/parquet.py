"""parquet/<table>: each unload converted to typed Parquet as it is, nothing merged, nothing lost.

One multi-asset per kind of table is one stage (`teem_assets.stages.convert`): every selected table and
batch date of a run is converted in a single Spark job, wherever the `spark` resource runs it.
"""

from collections.abc import Iterator

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.assets.conventions import Placement
from teem_assets.assets.keys import parquet_key, raw_key, selected_tables
from teem_assets.assets.stage import layer_spec, stage, stage_request
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.verdicts.batches import COMPANIES, VOLUME
from teem_assets.verdicts.parts import STALE_PARTS
from teem_assets.verdicts.rules import CATALOGUE_RULES
from teem_assets.verdicts.snapshots import SHRINK


def _spec(placement: Placement, table: Table) -> dg.AssetSpec:
    what = "the newest complete snapshot" if table.is_dimension else "one daily batch"
    description = f"{what} of {table.name} as typed Parquet; malformed records in quarantine/{table.name}/"
    kinds = {placement.compute_kind, "parquet", placement.storage_kind}
    uri = placement.parquet_uri(table)
    return layer_spec(placement, table, parquet_key(table), raw_key(table), kinds, description, uri)


def _stale_parts_spec(table: Table) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        STALE_PARTS,
        asset=parquet_key(table),
        description="Warns, naming them, about the parts of an unload without a manifest that were not read because "
        "they were written more than an hour before its newest part (an earlier unload's, left by ALLOWOVERWRITE). "
        "An unload written over longer than that loses their rows: unload with MANIFEST to make it exact.",
    )


def _rules_spec(table: Table) -> dg.AssetCheckSpec:
    rules = "; ".join(f"{r.name} ({'blocks' if r.blocks else 'warns'})" for r in table.rules)
    return dg.AssetCheckSpec(
        CATALOGUE_RULES,
        asset=parquet_key(table),
        blocking=True,
        description="The catalogue's rules for this table, evaluated while the unload is converted: per rule "
        "broken, the rows and a few examples (personal data masked). A rule that blocks stops the batch here "
        f"(and the migrate stage refuses it, whoever runs it); the others warn. Rules: {rules}.",
    )


def _snapshot_check_specs(table: Table) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            SHRINK,
            asset=parquet_key(table),
            blocking=True,
            description="A snapshot that is empty, or holds less than TEEM_SNAPSHOT_SHRINK_THRESHOLD (0.9) of the "
            "current migrated table's rows, stops here: the migrated table and PostgreSQL keep what they have "
            "(an unload cut short would otherwise replace a whole dimension with less).",
        ),
        _stale_parts_spec(table),
        _rules_spec(table),
    ]


def _batch_check_specs(table: Table) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            VOLUME,
            asset=parquet_key(table),
            blocking=True,
            description="Each batch holds at least TEEM_VOLUME_THRESHOLD (0.95) of its baseline: the fewest rows "
            "among the batches of the same weekday in the TEEM_TRAILING_WEEKS (4) weeks before it. It keeps a "
            "short or half-written unload out of the migrated tables, PostgreSQL and the aggregates (the "
            "predecessor's lapsed 95% pre-check). A short date, alone or in a range, stops the run here, naming it "
            "in short_batches; the run's other dates then run on their own (admitted_job), so that only the "
            "short date shows failed downstream. The first week passes with a note.",
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
    specs += [_stale_parts_spec(table), _rules_spec(table)]
    return specs


def parquet_snapshots(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, thresholds: CheckThresholds
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    tables = [t.name for t in selected_tables(context, DIMENSIONS, parquet_key)]
    settings = {"snapshot_shrink_threshold": thresholds.snapshot_shrink_threshold}
    yield from spark.run_stage(
        context, storage, stage_request(context, storage, "convert", tables, ["snapshot"], settings)
    )


def parquet_batches(
    context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, thresholds: CheckThresholds
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    tables = [t.name for t in selected_tables(context, FACTS, parquet_key)]
    settings = {
        "volume_threshold": thresholds.volume_threshold,
        "trailing_weeks": thresholds.trailing_weeks,
        "trailing_batches": thresholds.trailing_batches,
    }
    request = stage_request(context, storage, "convert", tables, context.partition_keys, settings)
    yield from spark.run_stage(context, storage, request)


def parquet_assets(placement: Placement) -> list[dg.AssetsDefinition]:
    return [
        stage(placement, "parquet_snapshots", DIMENSIONS, _spec, checks=_snapshot_check_specs)(parquet_snapshots),
        stage(placement, "parquet_batches", FACTS, _spec, checks=_batch_check_specs)(parquet_batches),
    ]
