"""A whole daily batch through every stage in one Dagster run, as production runs it: seconds per stage and in
all, and the peak RSS of the run's process tree (the run's process, its JVM and Spark's Python workers).

The sample is one day of unloads (the dimension snapshots and both fact tables) scaled so that the fact
text is about `--gb`; it is generated once under bench/data/daily/. The run is `migration_job` for that
date, in a child process with its own Dagster instance, against the PostgreSQL of `--url` (the embedded
server when none answers). Usage: python bench/daily.py [--gb 1] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

HERE = Path(__file__).resolve().parent
DAY = dt.date(2019, 9, 2)
FACT_BYTES_PER_SCALE_DAY = 330_000  # measured: both fact tables' text per scale unit and batch day


def generate(root: Path, gigabytes: float) -> int:
    """The day's unloads, once; returns the fact text's size in bytes."""
    scale = max(1, int(gigabytes * 1e9 / FACT_BYTES_PER_SCALE_DAY))
    marker = root / f"_done_scale_{scale}"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        generate_sample(str(root), SampleSpec(start=DAY, days=1, seed=5, scale=scale), UnloadOptions())
        marker.touch()
    return sum(p.stat().st_size for p in (root / "csv").glob("fact_*/incremental/*/*_part_*"))


def run_child() -> None:
    """In the child: the run, then each step's seconds from the instance's event log, as JSON."""
    from dagster._core.events import DagsterEventType

    from teem_assets.runner import instance, run_range

    begin = time.monotonic()
    result, materialized = run_range(DAY, DAY)
    total = time.monotonic() - begin
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance().all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    rows = {item.asset: item.rows for item in materialized}
    print(json.dumps({"success": result.success, "total": total, "steps": seconds, "rows": rows}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--url", default=os.environ.get("TEEM_TEST_POSTGRES_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child()
        return
    work = HERE / "data" / "daily"
    started = time.monotonic()
    size = generate(work / "root", args.gb)
    print(f"one day of unloads: {size / 1e6:.0f} MB of fact text (generated in {time.monotonic() - started:.0f} s "
          "if it was not there)", flush=True)  # fmt: skip
    for leftover in ("parquet", "warehouse", "quarantine"):
        shutil.rmtree(work / "root" / leftover, ignore_errors=True)
    shutil.rmtree(work / "home", ignore_errors=True)
    env = {
        **os.environ,
        "TEEM_ROOT": str(work / "root"),
        "TEEM_HOME": str(work / "home"),
        "TEEM_PG_SCHEMA": "teem_bench_daily",
    }
    if args.url:
        env["TEEM_POSTGRES_URL"] = args.url
    (work / "home").mkdir(parents=True)
    log = open(work / "home" / "run.log", "w")  # Spark's, the JVM's and Dagster's lines
    child = subprocess.Popen(
        [sys.executable, __file__, "--child"], env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    tree, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.1)
    output = child.stdout.read() if child.stdout else ""
    log.close()
    report = json.loads(output.strip().splitlines()[-1])
    if child.returncode or not report["success"]:
        raise SystemExit(f"the run failed: see {work / 'home' / 'run.log'}")
    print(f"\nmigration_job for {DAY}, {size / 1e6:.0f} MB of fact text, {os.cpu_count()} cores")
    for step, seconds in report["steps"].items():
        print(f"  {step:<22} {seconds:7.1f} s")
    print(f"  {'the run, in all':<22} {report['total']:7.1f} s ({size / 1e6 / report['total']:.1f} MB/s of fact text)")
    print(f"  peak RSS of the run's processes: {peak / 2**20:,.0f} MB")
    for asset, rows in report["rows"].items():
        print(f"    {asset:<30} {rows} rows")


if __name__ == "__main__":
    main()
