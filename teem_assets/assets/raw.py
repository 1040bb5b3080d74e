"""The unloads themselves: external assets, written by Redshift's UNLOAD, observed, never materialized here."""

from __future__ import annotations

import dagster as dg

from teem_assets.assets.conventions import Placement, conventions
from teem_assets.assets.keys import raw_key
from teem_assets.catalogue import TABLES, Table


def raw_spec(placement: Placement, table: Table) -> dg.AssetSpec:
    where = "csv/{t}/snapshot/" if table.is_dimension else "csv/{t}/incremental/<batch date>/"
    kind = "weekly snapshot" if table.is_dimension else "daily batch of rows created or updated that day"
    return dg.AssetSpec(
        raw_key(table),
        description=f"Redshift UNLOAD of teem_edw.{table.name} ({kind}) under {where.format(t=table.name)}",
        partitions_def=None if table.is_dimension else placement.partitions,
        **conventions(
            placement,
            "raw",
            table,
            {placement.storage_kind, "csv"},
            placement.raw_uri(table),
            f"teem_edw.{table.name}",
            not table.is_dimension,
        ),
    )


def raw_specs(placement: Placement) -> list[dg.AssetSpec]:
    return [raw_spec(placement, table) for table in TABLES.values()]
