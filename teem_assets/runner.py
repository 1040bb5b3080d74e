"""`teem run` and `teem demo`: the migration job for a range of batch dates, recorded in the Dagster
instance (DAGSTER_HOME), so that `dagster dev` shows the runs and materializations afterwards."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import dagster as dg
import yaml
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from teem_assets.assets.held_back import admitted_ranges, held_back
from teem_assets.settings import SettingError, load

# Every pool holds one slot: two runs never write the same tables at once (the stages' pools,
# teem_assets.assets.stage.WRITER_POOLS). The README's deployment dagster.yaml says the same.
POOLS = """concurrency:
  pools:
    default_limit: 1
"""
# A run that failed outside its steps (its worker lost, its code server gone) is run again from the failure, at
# most twice; a step's own failures are not: its RetryPolicy retried what is transient, and the rest (an
# unreadable unload, settings that cannot work) needs a fix first. The README's deployment dagster.yaml says
# the same.
RUN_RETRIES = """run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
"""
# The daemon's run monitoring: a run past its `dagster/max_runtime` (every job carries one) is ended, and the
# slots of a run that ended are freed after 5 minutes whoever ended it. Runs whose worker was killed are ended,
# and their slots freed at once, by `jobs.dead_runs`.
RUN_MONITORING = """run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 300
"""
INSTANCE_SETTINGS = "telemetry:\n  enabled: false\n" + POOLS + RUN_RETRIES + RUN_MONITORING


class InstanceSettingsError(SettingError):
    """DAGSTER_HOME/dagster.yaml holds settings the pipeline cannot run safely with; the message names the file."""


def ensure_instance_settings(home: str) -> None:
    """Write DAGSTER_HOME/dagster.yaml when it is missing, or add the pools, run retries and run monitoring to one
    written before them: the pools' limit of 1 goes into a `concurrency:` block already there (its run limits
    kept); a different pool limit there is refused, naming the file and what to write."""
    os.makedirs(home, exist_ok=True)
    settings = os.path.join(home, "dagster.yaml")
    current = open(settings).read() if os.path.exists(settings) else ""
    if not current.strip():
        updated = INSTANCE_SETTINGS
    else:
        updated = _with_pools(current, settings)
        blocks = {"run_retries:": RUN_RETRIES, "run_monitoring:": RUN_MONITORING}
        missing = "".join(block for key, block in blocks.items() if key not in current)
        if missing:
            updated += missing if updated.endswith("\n") else "\n" + missing
    if updated != current:
        with open(settings, "w") as handle:
            handle.write(updated)


def _with_pools(current: str, path: str) -> str:
    concurrency = (yaml.safe_load(current) or {}).get("concurrency")
    if concurrency is None:
        return current + ("" if current.endswith("\n") else "\n") + POOLS
    pools = concurrency.get("pools") if isinstance(concurrency, dict) else None
    if pools is None:
        lines = current.splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.rstrip() == "concurrency:"]
        if len(at) == 1:
            lines.insert(at[0] + 1, "  pools:\n    default_limit: 1\n")
            return "".join(lines)
    elif isinstance(pools, dict) and pools.get("default_limit") == 1:
        return current
    raise InstanceSettingsError(
        f"{path}: the writer pools need a limit of 1 (two runs must never write one table at once); write "
        "`pools:` with `default_limit: 1` under its `concurrency:` block"
    )


def instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME (default `.teem/dagster`), created on first use."""
    home = str(load().dagster_home)
    ensure_instance_settings(home)
    return dg.DagsterInstance.from_config(home)


@dataclass(frozen=True)
class Materialized:
    asset: str
    partitions: str
    rows: object
    quarantined: object


def execute(
    job_name: str, tags: dict[str, str], run_id: str | None = None, run_config: dict | None = None
) -> dg.ExecutionResult:
    """Run a job of the code location in this process on the instance, with the job's own executor
    (`jobs.executor`: a run waiting for a pool ends dead holders, sleeps and stops on a signal).
    `execute_in_process` would put Dagster's plain in-process executor in its place."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run

    job = ReconstructableRepository.for_module("teem_assets.definitions", "defs").get_reconstructable_job(job_name)
    definition = job.get_definition()
    run = instance().create_run_for_job(
        job_def=definition,
        run_id=run_id,
        run_config=run_config or {},
        tags={**definition.run_tags, **tags},
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance())


def run_range(
    first: dt.date, last: dt.date, run_id: str | None = None, job_name: str = "migration_job"
) -> tuple[dg.ExecutionResult, list[Materialized]]:
    """Materialize every layer (of `job_name`) for batch dates first..last as one single-run backfill."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    result = execute(
        job_name,
        {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()},
        run_id,
        {"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    seen: dict[str, Materialized] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        key = materialization.asset_key.to_user_string()
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        partitions = f"{first}..{last}" if materialization.partition else "-"
        seen[key] = Materialized(key, partitions, metadata.get("dagster/row_count"), metadata.get("rows_quarantined"))
    return result, list(seen.values())


def admitted_after(result: dg.ExecutionResult, first: dt.date, last: dt.date) -> tuple[list[str], list[tuple]]:
    """The dates a failed range run held back (short), and the unbroken ranges of its other dates, which
    `admitted_job` runs (teem_assets.assets.held_back); nothing when the run failed otherwise."""
    held = held_back(result.get_asset_check_evaluations())
    return held, admitted_ranges(first.isoformat(), last.isoformat(), held) if held else []
