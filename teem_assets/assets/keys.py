"""Asset keys of each layer, one prefix per layer: raw/<table>, parquet/<table>, migrated/<table>."""

from __future__ import annotations

import dagster as dg

from teem_assets.catalogue import Table


def raw_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["raw", table.name])


def parquet_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["parquet", table.name])


def migrated_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["migrated", table.name])
