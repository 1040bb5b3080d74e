"""maintenance/<table>: the upkeep of each Iceberg table, migrated and aggregate, by the maintain stage
(`teem_assets.stages.maintain`) wherever the `spark` resource runs it. Each materialization records the
table's data files, their average size, small files, manifests, snapshots and metadata bytes before and after,
which the asset's plots show over time; a warning check says when a table still passes the thresholds after."""

from collections.abc import Iterator, Sequence

import dagster as dg

from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.conventions import Placement, conventions
from teem_assets.assets.keys import aggregate_key, migrated_key
from teem_assets.assets.stage import pool_of, stage_request
from teem_assets.catalogue import TABLES, Columns
from teem_assets.stages.maintain import WITHIN_THRESHOLDS

STAGE = "maintenance"
MAINTAINED: list[Columns] = [*TABLES.values(), *AGGREGATES.values()]


def maintenance_key(entry: Columns) -> dg.AssetKey:
    return dg.AssetKey(["maintenance", entry.name])


def _spec(placement: Placement, entry: Columns) -> dg.AssetSpec:
    aggregate = entry.name in AGGREGATES
    upstream = aggregate_key(entry) if aggregate else migrated_key(entry)
    database = placement.aggregates_database if aggregate else placement.migrated_database
    return dg.AssetSpec(
        maintenance_key(entry),
        deps=[upstream],
        description=f"Upkeep of the Iceberg table {database}.{entry.name}: the partitions written since the last "
        "upkeep compacted when they hold TEEM_MAINTENANCE_SMALL_FILES (2) files under "
        "TEEM_MAINTENANCE_SMALL_FILE_MB (32), manifests rewritten past TEEM_MAINTENANCE_MANIFESTS (32), snapshots "
        "expired, orphan files removed. No value changes.",
        **conventions(
            placement,
            STAGE,
            entry,
            {placement.compute_kind, "iceberg", placement.storage_kind},
            placement.iceberg_uri(database, entry.name),
            f"{database}.{entry.name}",
            daily=False,
        ),
    )


def _check_spec(entry: Columns) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        WITHIN_THRESHOLDS,
        asset=maintenance_key(entry),
        description="Warns when, after the upkeep, a partition still holds TEEM_MAINTENANCE_SMALL_FILES or more "
        "small files or the table more than TEEM_MAINTENANCE_MANIFESTS manifests: reads are getting slower and "
        "the upkeep does not keep up (or runs too seldom).",
    )


def maintenance_asset(placement: Placement, entries: Sequence[Columns] = MAINTAINED) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=STAGE,
        specs=[_spec(placement, e) for e in entries],
        check_specs=[_check_spec(e) for e in entries],
        can_subset=True,
        pool=pool_of(STAGE),
    )
    def maintenance(
        context: dg.AssetExecutionContext, spark: SparkResource, storage: StorageResource, thresholds: CheckThresholds
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        tables = [e.name for e in entries if maintenance_key(e) in context.selected_asset_keys]
        settings = {"thresholds": thresholds.maintenance()}
        yield from spark.run_stage(context, storage, stage_request(context, storage, "maintain", tables, [], settings))

    return maintenance
