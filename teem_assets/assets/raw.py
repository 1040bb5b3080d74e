"""The unloads themselves: external assets, written by Redshift's UNLOAD, observed, never materialized here."""

from __future__ import annotations

import dagster as dg

from teem_assets.assets.conventions import conventions, raw_uri, storage_kind
from teem_assets.assets.keys import raw_key
from teem_assets.catalogue import TABLES, Table
from teem_assets.partitions import batch_partitions


def raw_spec(table: Table) -> dg.AssetSpec:
    where = "csv/{t}/snapshot/" if table.is_dimension else "csv/{t}/incremental/<batch date>/"
    kind = "weekly snapshot" if table.is_dimension else "daily batch of rows created or updated that day"
    return dg.AssetSpec(
        raw_key(table),
        description=f"Redshift UNLOAD of teem_edw.{table.name} ({kind}) under {where.format(t=table.name)}",
        partitions_def=None if table.is_dimension else batch_partitions,
        **conventions(
            "raw", table, {storage_kind(), "csv"}, raw_uri(table), f"teem_edw.{table.name}", not table.is_dimension
        ),
    )


raw_specs = [raw_spec(table) for table in TABLES.values()]
