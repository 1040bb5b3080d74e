"""The shape every layer shares: one multi-asset per kind of table, so a run of a layer is one step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg

from resources.storage import StorageResource
from teem_assets.assets.conventions import Placement, conventions
from teem_assets.catalogue import Table
from teem_assets.stages.request import StageRequest

# In a run of every layer, snapshot stages run before batch stages (the executor picks higher first).
SNAPSHOTS_FIRST = {"dagster/priority": "10"}
# A commit that lost to another run's, a server that restarted: the step runs again, with backoff. The stages
# are idempotent (MERGE, replace, upsert), so a retried step has no duplicate effect.
COMMIT_RETRIES = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Stages that write shared tables take their pool's one slot (DESIGN §7): runs that write the same tables
# never overlap, in every instance the project creates (`teem_assets.runner.INSTANCE_SETTINGS`). The
# conversions too: two runs of one batch date convert one after the other, not into each other's attempts.
WRITER_POOLS = {
    "parquet_snapshots",
    "parquet_batches",
    "migrated_snapshots",
    "migrated_batches",
    "postgres_snapshots",
    "postgres_batches",
    "aggregates",
    "postgres_aggregates",
    "maintenance",
}


def pool_of(stage_name: str) -> str | None:
    return f"teem_{stage_name}" if stage_name in WRITER_POOLS else None


def layer_spec(
    placement: Placement,
    table: Table,
    key: dg.AssetKey,
    upstream: dg.AssetKey,
    kinds: set[str],
    description: str,
    uri: str,
    table_name: str | None = None,
) -> dg.AssetSpec:
    """A table's asset in the layer its key names (and its group): daily-partitioned for facts, unpartitioned
    for dimensions, with the conventions every asset carries."""
    return dg.AssetSpec(
        key,
        deps=[upstream],
        description=description,
        partitions_def=None if table.is_dimension else placement.partitions,
        **conventions(placement, key.path[0], table, kinds, uri, table_name, daily=not table.is_dimension),
    )


def stage(
    placement: Placement,
    name: str,
    tables: Sequence[Table],
    spec: Callable[[Placement, Table], dg.AssetSpec],
    checks: Callable[[Table], list[dg.AssetCheckSpec]] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> Callable:
    """The multi-asset decorator of a layer for `tables` (all dimensions or all facts): subsettable from
    the UI; facts take a range of batch dates as one run (single-run backfill), snapshots go first."""
    facts = not tables[0].is_dimension
    return dg.multi_asset(
        name=name,
        specs=[spec(placement, t) for t in tables],
        check_specs=[c for t in tables for c in checks(t)] if checks else None,
        can_subset=True,
        partitions_def=placement.partitions if facts else None,
        backfill_policy=dg.BackfillPolicy.single_run() if facts else None,
        op_tags=None if facts else SNAPSHOTS_FIRST,
        pool=pool_of(name),
        retry_policy=retry_policy,
    )


def stage_request(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    stage_name: str,
    tables: Sequence[str],
    batches: Sequence[str],
    settings: dict[str, object] | None = None,
    stage_to: str | None = None,
) -> StageRequest:
    """The request of a stage for this step: its data root, selected tables, batches and checks, and the branch
    its writes are staged on (None: main)."""
    checks = [f"{key.asset_key.to_user_string()}:{key.name}" for key in context.selected_asset_check_keys]
    return StageRequest(
        stage_name, storage.data.settings(), list(tables), list(batches), sorted(checks), settings or {}, stage_to
    )
