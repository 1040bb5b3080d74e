"""Asset keys of each layer, one prefix per layer: raw/, parquet/, migrated/ and postgres/<table>."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from teem_assets.catalogue import Table


def raw_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["raw", table.name])


def parquet_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["parquet", table.name])


def migrated_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["migrated", table.name])


def postgres_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table.name])


def selected_tables(
    context: dg.AssetExecutionContext, tables: list[Table], key: Callable[[Table], dg.AssetKey]
) -> list[Table]:
    """The tables of a multi-asset that this run materializes (a subset when the UI selects some)."""
    return [t for t in tables if key(t) in context.selected_asset_keys]
