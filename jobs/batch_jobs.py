"""Jobs over the asset graph: the weekly snapshot (dimensions), the daily batch (facts), every layer for a
range, and the hourly freshness checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.keys import aggregate_key, migrated_key, parquet_key, postgres_key
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.checks.freshness import freshness_checks

KeyOf = Callable[[Table], dg.AssetKey]


def _layers(
    tables: list[Table], keys: tuple[KeyOf, ...] = (parquet_key, migrated_key, postgres_key)
) -> dg.AssetSelection:
    """The tables' assets in every layer (or those of `keys`), with their checks except freshness (its own hourly
    job)."""
    assets = dg.AssetSelection.assets(*[key(t) for t in tables for key in keys])
    return assets - dg.AssetSelection.checks(*freshness_checks)


AGGREGATE_LAYERS = dg.AssetSelection.assets(
    *[key(a) for a in AGGREGATES.values() for key in (aggregate_key, postgres_key)]
)


@dataclass(frozen=True)
class Jobs:
    snapshot: UnresolvedAssetJobDefinition
    batch: UnresolvedAssetJobDefinition
    migration: UnresolvedAssetJobDefinition
    freshness: UnresolvedAssetJobDefinition
    admitted: UnresolvedAssetJobDefinition
    maintenance: UnresolvedAssetJobDefinition

    def all(self) -> list[UnresolvedAssetJobDefinition]:
        return [self.snapshot, self.batch, self.migration, self.freshness, self.admitted, self.maintenance]


def batch_jobs(max_runtime_seconds: int) -> Jobs:
    """The jobs; run monitoring ends a run of any of them that runs longer than `max_runtime_seconds`
    (TEEM_MAX_RUNTIME_SECONDS, README "Deployment settings"): a hung run ends too."""
    tags = {"dagster/max_runtime": str(max_runtime_seconds)}
    return Jobs(
        snapshot=dg.define_asset_job(
            "snapshot_job",
            tags=tags,
            selection=_layers(DIMENSIONS),
            description="Dimensions: convert the newest snapshots, replace the migrated tables and the PostgreSQL "
            "copies.",
        ),
        batch=dg.define_asset_job(
            "batch_job",
            tags=tags,
            selection=_layers(FACTS) | AGGREGATE_LAYERS,
            description="Facts: convert the day's batch unloads, upsert them into the migrated tables and "
            "PostgreSQL, recompute the aggregates for the days they touch.",
        ),
        migration=dg.define_asset_job(
            "migration_job",
            tags=tags,
            selection=_layers(DIMENSIONS) | _layers(FACTS) | AGGREGATE_LAYERS,
            description="Every layer for a range of batch dates in one run: the snapshots first, then the "
            "batches, then the aggregates.",
        ),
        freshness=dg.define_asset_job(
            "freshness_job",
            selection=dg.AssetSelection.checks(*freshness_checks),
            tags=tags,
            description="The freshness checks of the migrated fact tables.",
        ),
        admitted=dg.define_asset_job(
            "admitted_job",
            tags=tags,
            selection=_layers(FACTS, (migrated_key, postgres_key)) | AGGREGATE_LAYERS,
            description="The dates of a range run that stopped at Parquet because another of its dates was short "
            "(volume check), already converted: the facts' migrated and PostgreSQL layers and the aggregates. "
            "Started by `teem run`, and in a deployment by held_back_sensor; the short date stays failed.",
        ),
        maintenance=dg.define_asset_job(
            "maintenance_job",
            tags=tags,
            selection=dg.AssetSelection.groups("maintenance"),
            description="The upkeep of every Iceberg table: compaction of the partitions written since the last "
            "one, manifests rewritten, snapshots expired, orphan files removed; each table's shape before and "
            "after in its maintenance/<table> asset.",
        ),
    )
