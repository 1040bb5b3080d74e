"""Asset keys of each layer, one prefix per layer: raw/, parquet/, migrated/, aggregates/ and postgres/<table>."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from teem_assets.catalogue import Columns, Table

TableLike = TypeVar("TableLike", bound=Columns)


def raw_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["raw", table.name])


def parquet_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["parquet", table.name])


def migrated_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["migrated", table.name])


def postgres_key(table: Columns) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table.name])


def aggregate_key(aggregate: Columns) -> dg.AssetKey:
    return dg.AssetKey(["aggregates", aggregate.name])


def selected_tables(
    context: dg.AssetExecutionContext, tables: list[TableLike], key: Callable[[TableLike], dg.AssetKey]
) -> list[TableLike]:
    """The tables of a multi-asset that this run materializes (a subset when the UI selects some)."""
    return [t for t in tables if key(t) in context.selected_asset_keys]
