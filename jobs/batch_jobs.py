"""Jobs over the asset graph: the weekly snapshot (dimensions) and the daily batch (facts)."""

from __future__ import annotations

import dagster as dg

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.keys import aggregate_key, migrated_key, parquet_key, postgres_key
from teem_assets.catalogue import DIMENSIONS, FACTS, Table
from teem_assets.checks.freshness import freshness_checks
from teem_assets.settings import max_runtime_seconds

# Run monitoring ends a run that runs longer than this (README, "Deployment settings"): a hung run ends too.
RUN_TAGS = {"dagster/max_runtime": str(max_runtime_seconds())}


def _layers(tables: list[Table]) -> dg.AssetSelection:
    """The tables' assets in every layer, with their checks except freshness (its own hourly job)."""
    assets = dg.AssetSelection.assets(*[key(t) for t in tables for key in (parquet_key, migrated_key, postgres_key)])
    return assets - dg.AssetSelection.checks(*freshness_checks)


snapshot_job = dg.define_asset_job(
    "snapshot_job",
    tags=RUN_TAGS,
    selection=_layers(DIMENSIONS),
    description="Dimensions: convert the newest snapshots, replace the migrated tables and the PostgreSQL copies.",
)

AGGREGATE_LAYERS = dg.AssetSelection.assets(
    *[key(a) for a in AGGREGATES.values() for key in (aggregate_key, postgres_key)]
)

batch_job = dg.define_asset_job(
    "batch_job",
    tags=RUN_TAGS,
    selection=_layers(FACTS) | AGGREGATE_LAYERS,
    description="Facts: convert the day's batch unloads, upsert them into the migrated tables and PostgreSQL, "
    "recompute the aggregates for the days they touch.",
)

migration_job = dg.define_asset_job(
    "migration_job",
    tags=RUN_TAGS,
    selection=_layers(DIMENSIONS) | _layers(FACTS) | AGGREGATE_LAYERS,
    description="Every layer for a range of batch dates in one run: the snapshots first, then the batches, "
    "then the aggregates.",
)
