"""A run that dies never blocks the runs after it (DESIGN §7), tried as a user meets it: `teem run` SIGKILLed
with its whole process group while it holds a writer pool, then `teem run` again on the same instance; and a
`teem run` waiting for a pool a live run holds: it sleeps, says whose run it waits for, and stops on SIGTERM or
Ctrl-C."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from servers import _default_signals
from tables import pipeline_state

from jobs.dead_runs import ENDED_TAG
from teem_assets.runner import ensure_instance_settings
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.workers import HEARTBEAT_TAG, Worker

ROOT = Path(__file__).resolve().parents[1]
SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=3, seed=7)
FIRST, LAST = SPEC.start.isoformat(), SPEC.end.isoformat()
# one pool of each kind of stage, in the order a run reaches them: convert, export, migrate, aggregate
KILLED_HOLDING = ["teem_parquet_snapshots", "teem_postgres_snapshots", "teem_migrated_batches", "teem_aggregates"]


@dataclass(frozen=True)
class World:
    """A data root with the sample's unloads, and the TEEM_HOME and Dagster instance `teem` uses for it."""

    folder: Path
    url: str
    schema: str

    @property
    def dagster_home(self) -> Path:
        return self.folder / "teem" / "dagster"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TEEM_ROOT": str(self.folder / "root"),
            "TEEM_HOME": str(self.folder / "teem"),
            "DAGSTER_HOME": str(self.dagster_home),
            "TEEM_POSTGRES_URL": self.url,
            "TEEM_PG_SCHEMA": self.schema,
        }

    def instance(self) -> dg.DagsterInstance:
        ensure_instance_settings(str(self.dagster_home))  # what `teem run` writes, before the first run here
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def teem(self, *args: str, log: str) -> subprocess.Popen:
        """`teem ARGS` as a user starts it: a process group of its own, default signal handlers."""
        return subprocess.Popen(
            [sys.executable, "-m", "teem_assets.cli", *args],
            env=self.env(),
            cwd=str(self.folder),
            stdout=open(self.folder / log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )

    def log(self, name: str) -> str:
        return (self.folder / name).read_text()


def _world(folder: Path, url: str, schema: str) -> World:
    generate_sample(str(folder / "root"), SPEC, UnloadOptions())
    return World(folder, url, schema)


def _holders(instance: dg.DagsterInstance, pool: str) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}


def _cpu_seconds(group: int) -> float:
    """User and system CPU time of every live process in process group `group`."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_teem_run_killed_holding_each_pool_is_ended_by_the_next_which_equals_an_undisturbed_run(
    tmp_path, postgres_url, pg_schema
):
    undisturbed = _world(tmp_path / "undisturbed", postgres_url, f"{pg_schema}_undisturbed")
    started = time.monotonic()
    run = undisturbed.teem("run", "--from", FIRST, "--to", LAST, log="run.log")
    assert run.wait(900) == 0, undisturbed.log("run.log")[-4000:]
    undisturbed_seconds = time.monotonic() - started
    expected = pipeline_state(undisturbed.folder / "root", postgres_url, undisturbed.schema)

    world = _world(tmp_path / "killed", postgres_url, pg_schema)
    instance = world.instance()
    dead: list[str] = []
    for number, pool in enumerate(KILLED_HOLDING):
        child = world.teem("run", "--from", FIRST, "--to", LAST, log=f"killed-{number}.log")
        deadline = time.monotonic() + 600
        while child.poll() is None and time.monotonic() < deadline:
            holding = _holders(instance, pool) - set(dead)
            if holding:
                os.killpg(child.pid, signal.SIGKILL)  # as an out-of-memory kill or a lost host ends it
                dead.append(holding.pop())
                break
            time.sleep(0.01)
        child.wait(30)
        assert len(dead) == number + 1, f"ended before it held {pool}:\n" + world.log(f"killed-{number}.log")[-4000:]
        assert instance.get_run_by_id(dead[-1]).status == dg.DagsterRunStatus.STARTED  # as the kill left it
        assert dead[-1] in _holders(instance, pool)
        # the run before it held a slot this one needed: this one ended it before waiting
        if number:
            ended = instance.get_run_by_id(dead[-2])
            assert ended.status == dg.DagsterRunStatus.FAILURE, number
            assert ended.tags[ENDED_TAG].startswith("its worker, process "), ended.tags
            assert f"ended run {dead[-2]}" in world.log(f"killed-{number}.log")

    started = time.monotonic()
    again = world.teem("run", "--from", FIRST, "--to", LAST, log="again.log")
    assert again.wait(900) == 0, world.log("again.log")[-4000:]
    seconds = time.monotonic() - started
    assert seconds <= 2 * undisturbed_seconds, (seconds, undisturbed_seconds)
    assert f"ended run {dead[-1]}: its worker, process " in world.log("again.log")
    assert pipeline_state(world.folder / "root", postgres_url, pg_schema) == expected
    for run_id in dead:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_run_ids() == set()

    listing = world.teem("runs", log="runs.log")
    assert listing.wait(120) == 0
    lines = world.log("runs.log")
    assert lines.count(" FAILURE ") == len(dead) and lines.count(" SUCCESS ") == 1, lines
    assert lines.count("ended: its worker, process ") == len(dead), lines
    assert f"{FIRST}..{LAST}" in lines


def _wait_then_stop(
    world: World,
    instance: dg.DagsterInstance,
    child: subprocess.Popen,
    log: str,
    holder: str,
    pools: list[str],
    sig: signal.Signals,
) -> None:
    """`child` waits for `pools` (held by run `holder`): it says so, costs next to no CPU (measured on the
    SIGTERM round), and `sig` stops it within 5 s, the run canceled and the holder's slots untouched."""
    storage = instance.event_log_storage
    said = [
        f"waiting for pool {pool} ({pool.removeprefix('teem_')}), held by run {holder} (holder_job" for pool in pools
    ]

    def waiting() -> str | None:
        pending = [{step.run_id for step in storage.get_concurrency_info(p).pending_steps} for p in pools]
        run_ids = set.intersection(*pending) - {holder}
        return next(iter(run_ids)) if run_ids and all(line in world.log(log) for line in said) else None

    deadline = time.monotonic() + 180
    while (run_id := waiting()) is None and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_id, world.log(log)[-4000:]
    if sig == signal.SIGTERM:
        time.sleep(2)
        before = _cpu_seconds(child.pid)
        time.sleep(30)
        spent = _cpu_seconds(child.pid) - before
        # a waiting loop that spins costs a core, about 30 s; a sleeping one about 1 s (the JVM's own threads
        # included), measured up to 2.06 s on a loaded two-core machine
        assert spent < 5.0, f"{spent:.2f} s of CPU in 30 s of waiting"

    sent = time.monotonic()
    os.killpg(child.pid, sig)
    child.wait(5)  # raises when it takes longer
    assert time.monotonic() - sent < 5
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.CANCELED
    assert f"run {run_id}: canceled in " in world.log(log)
    assert all(_holders(instance, pool) == {holder} for pool in pools)  # the live run keeps its slots
    assert run_id not in storage.get_concurrency_run_ids()  # and the stopped one waits no more


@pytest.mark.timeout(600)
def test_a_run_waiting_for_a_live_runs_pool_sleeps_names_it_and_stops_on_sigterm_or_sigint(
    tmp_path, postgres_url, pg_schema
):
    world = _world(tmp_path, postgres_url, pg_schema)
    instance = world.instance()
    pools = ["teem_parquet_snapshots", "teem_parquet_batches"]  # every step of a run waits for one of these
    holder = dg.DagsterRun(
        job_name="holder_job",
        run_id=make_new_run_id(),
        status=dg.DagsterRunStatus.STARTED,
        tags={**Worker.this_process().tags(), HEARTBEAT_TAG: f"{time.time():.0f}"},  # alive: this process
    )
    instance.add_run(holder)
    storage = instance.event_log_storage
    for pool in pools:
        storage.initialize_concurrency_limit_to_default(pool)
        assert storage.claim_concurrency_slot(pool, holder.run_id, "holder_step").is_claimed

    for number, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        log = f"waiting-{number}.log"
        child = world.teem("run", "--from", FIRST, "--to", LAST, log=log)
        try:
            _wait_then_stop(world, instance, child, log, holder.run_id, pools, sig)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    instance.dispose()
