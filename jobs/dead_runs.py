"""Runs whose worker is provably gone are marked failed and their pool slots freed (DESIGN §7), by a run before
it waits for a pool (`jobs.executor`) and by `dead_run_sensor` in the daemon. A worker killed outright (out of
memory, a lost container, a reboot) leaves its run STARTED and its slots held for ever otherwise: `teem run`
has no daemon at all, and under Dagster's default run launcher only the code server that started the worker
notices its death (it marks the run failed, but leaves the slots held), and not when it died with it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

from teem_assets.settings import Settings
from teem_assets.workers import Worker, why_gone

ENDED_TAG = "teem/ended_because"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# A run that ended without our worker tags (another executor) keeps its slots this long after its end, as
# Dagster's own `free_slots_after_run_end_seconds` does: its process may still be finishing a step.
FREE_AFTER_END_SECONDS = 300.0


@dataclass(frozen=True)
class Ended:
    run_id: str
    why: str
    slots_freed: bool


def pools_held(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The pools in which `run_id` holds a slot."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys()))
    return [pool for pool, info in infos.items() if any(s.run_id == run_id for s in info.claimed_slots)]


def holders(instance: dg.DagsterInstance, pool: str) -> list[dg.DagsterRun]:
    """The runs holding a slot of `pool`."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    runs = [instance.get_run_by_id(run_id) for run_id in sorted({s.run_id for s in info.claimed_slots})]
    return [run for run in runs if run is not None]


def describe(run: dg.DagsterRun) -> str:
    worker = Worker.from_tags(dict(run.tags))
    return f"run {run.run_id} ({run.job_name}, {run.status.value}{', ' + str(worker) if worker else ''})"


def _end(instance: dg.DagsterInstance, run: dg.DagsterRun, why: str) -> None:
    instance.add_run_tags(run.run_id, {ENDED_TAG: why})
    instance.report_run_failed(
        run,
        f"Marked failed: {why}. Its pool slots were freed.",
        JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
    )


def end_dead_runs(instance: dg.DagsterInstance, timeout: float) -> list[Ended]:
    """Mark failed every run in progress whose worker is provably gone (elsewhere: no heartbeat for `timeout`
    seconds), and free the pool slots of those and of finished runs that still hold some; returns what it ended
    or freed."""
    now = time.time()
    ended: list[Ended] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        why = why_gone(dict(run.tags), now, timeout)
        current = instance.get_run_by_id(run.run_id)
        if why is None or current is None or current.status not in IN_PROGRESS:
            continue
        _end(instance, current, why)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ended.append(Ended(run.run_id, why, slots_freed=True))
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return ended
    for run_id in sorted(storage.get_concurrency_run_ids()):
        record = next(iter(instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1)), None)
        if record is None:
            why = "the run no longer exists"
        elif not record.dagster_run.is_finished:
            continue
        elif Worker.from_tags(dict(record.dagster_run.tags)) is not None:
            why = why_gone(dict(record.dagster_run.tags), now, timeout)
            if why is None:
                continue  # its process is still finishing a step
            why = f"the run ended ({record.dagster_run.status.value}) and {why}"
        elif record.end_time is not None and now - record.end_time > FREE_AFTER_END_SECONDS:
            why = f"the run ended ({record.dagster_run.status.value}) {now - record.end_time:.0f} s ago"
        else:
            continue
        storage.free_concurrency_slots_for_run(run_id)
        ended.append(Ended(run_id, why, slots_freed=True))
    return ended


def dead_run_sensor(settings: Settings) -> dg.SensorDefinition:
    timeout = settings.run_heartbeat_timeout_seconds

    @dg.sensor(
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks failed every run whose worker is provably gone (on this host: no such process; "
        f"elsewhere: no heartbeat for TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS, {timeout:g} s) and frees the pool slots "
        "it held, so that a killed run never blocks the runs after it.",
    )
    def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        ended = end_dead_runs(context.instance, timeout)
        for item in ended:
            context.log.warning(f"run {item.run_id}: {item.why}; its pool slots were freed")
        return dg.SkipReason(f"{len(ended)} dead run(s) ended" if ended else "no dead run")

    return dead_run_sensor
