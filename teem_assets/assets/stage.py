"""The shape every layer shares: one multi-asset per kind of table, so a run of a layer is one step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg

from teem_assets.catalogue import Table
from teem_assets.partitions import batch_partitions

# In a run of every layer, snapshot stages run before batch stages (the executor picks higher first).
SNAPSHOTS_FIRST = {"dagster/priority": "10"}


def layer_spec(
    table: Table, key: dg.AssetKey, upstream: dg.AssetKey, group: str, kinds: set[str], description: str
) -> dg.AssetSpec:
    """A table's asset in a layer: daily-partitioned for facts, unpartitioned for dimensions."""
    return dg.AssetSpec(
        key,
        deps=[upstream],
        description=description,
        group_name=group,
        kinds=kinds,
        partitions_def=None if table.is_dimension else batch_partitions,
    )


def stage(
    name: str,
    tables: Sequence[Table],
    spec: Callable[[Table], dg.AssetSpec],
    checks: Callable[[Table], list[dg.AssetCheckSpec]] | None = None,
) -> Callable:
    """The multi-asset decorator of a layer for `tables` (all dimensions or all facts): subsettable from
    the UI; facts take a range of batch dates as one run (single-run backfill), snapshots go first."""
    facts = not tables[0].is_dimension
    return dg.multi_asset(
        name=name,
        specs=[spec(t) for t in tables],
        check_specs=[c for t in tables for c in checks(t)] if checks else None,
        can_subset=True,
        partitions_def=batch_partitions if facts else None,
        backfill_policy=dg.BackfillPolicy.single_run() if facts else None,
        op_tags=None if facts else SNAPSHOTS_FIRST,
    )
