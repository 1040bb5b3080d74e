"""`teem demo` and `teem run`: the sample generated once (demo), then every layer materialized for a range of
batch dates in one run, its progress in the terminal and everything Spark and Dagster log in a file."""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import TextIO

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.utils import make_new_run_id

from teem_assets.runner import Materialized, admitted_after, instance, run_range
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.settings import load
from teem_assets.terminal import StageProgress, logs_to_file, run_log_path

DEMO_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)


def ensure_sample(root: str) -> bool:
    """Generate the demo sample under `root` unless an unload is there already; True when generated."""
    if os.path.isdir(os.path.join(root, "csv")):
        return False
    generate_sample(root, DEMO_SPEC, UnloadOptions())
    return True


def print_materialized(materialized: list[Materialized], out: TextIO) -> None:
    for item in materialized:
        quarantined = "" if item.quarantined is None else f"  {item.quarantined} quarantined"
        out.write(f"  {item.asset:<28} {item.partitions:<24} {item.rows!s:>8} rows{quarantined}\n")


def report_run(first: dt.date, last: dt.date, out: TextIO, started: float, log: str, run_id: str) -> bool:
    """Run every layer for first..last, a line per stage as it ends, then the table of what it wrote. When the
    run stopped at Parquet because some dates were short, its other dates run on as admitted_job runs."""
    result = _report_one(first, last, out, started, log, run_id, "migration_job")
    if result.success:
        return True
    held, ranges = admitted_after(result, first, last)
    if held:
        out.write(f"held back, short (volume check): {', '.join(held)}; the run's other dates run on their own\n")
    for start, end in ranges:
        a, b, admitted_id = dt.date.fromisoformat(start), dt.date.fromisoformat(end), make_new_run_id()
        _report_one(a, b, out, time.monotonic(), log, admitted_id, "admitted_job")
        if instance().get_run_by_id(admitted_id).status == DagsterRunStatus.CANCELED:
            return False  # Ctrl-C or SIGTERM ends `teem run`, not only the run it reached
    if held:
        out.write(f"run {', '.join(held)} again once its unload is complete\n")
    return False


def _report_one(
    first: dt.date, last: dt.date, out: TextIO, started: float, log: str, run_id: str, job_name: str
) -> dg.ExecutionResult:
    out.write(f"run {run_id} ({job_name}), batch dates {first}..{last} (Spark's and Dagster's logs: {log})\n")
    with StageProgress(instance(), run_id, out) as progress:
        result, materialized = run_range(first, last, run_id, job_name)
    ended = "succeeded" if result.success else "FAILED"
    if instance().get_run_by_id(run_id).status == DagsterRunStatus.CANCELED:
        ended = "canceled"  # SIGTERM or Ctrl-C (jobs/executor.py)
    out.write(f"run {run_id}: {ended} in {time.monotonic() - started:.0f} s\n")
    print_materialized(materialized, out)
    for failure in progress.failures:
        out.write(f"failed: {failure}\n")
    if progress.failures:
        out.write(f"the whole error is in {log}\n")
    return result


def run_in_terminal(first: dt.date, last: dt.date) -> int:
    """`teem run`."""
    run_id = make_new_run_id()
    log = run_log_path(load().home / "logs", run_id)
    with logs_to_file(log) as out:
        return 0 if report_run(first, last, out, time.monotonic(), str(log), run_id) else 1


def run_demo(root: str) -> int:
    """`teem demo`."""
    started = time.monotonic()
    run_id = make_new_run_id()
    log = run_log_path(load().home / "logs", run_id)
    with logs_to_file(log) as out:
        if ensure_sample(root):
            out.write(f"generated the sample ({DEMO_SPEC.days} days from {DEMO_SPEC.start}) under {root}/csv\n")
        else:
            out.write(f"using the unloads already under {root}/csv\n")
        succeeded = report_run(DEMO_SPEC.start, DEMO_SPEC.end, out, started, str(log), run_id)
        out.write(f"\nIceberg tables under {root}/warehouse (`teem table NAME` shows one). To browse the runs:\n")
        out.write(f"  DAGSTER_HOME={instance().root_directory} ./dev.sh ui    # then open http://127.0.0.1:3000\n")
    return 0 if succeeded else 1
