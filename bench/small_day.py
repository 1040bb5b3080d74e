"""A small day: one `batch_job` of the 14-day sample after its history (the snapshot and the days before it),
in one process whose Spark application is already up, as a run worker's is once its first stage started.
Prints each step's seconds, the run's wall and CPU seconds (every process of the machine: the run's, its JVM,
Spark's Python workers) and the Spark jobs it ran, for each of `--days` batches in turn; the last is the small
day of issue 27. A fixed cost shows as seconds that do not move with the rows. The embedded PostgreSQL serves
it unless `--url` names one.
Usage: python bench/small_day.py [--days 4] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' way of running a job in process

from dagster_helpers import run_job  # noqa: E402

from teem_assets.sample.generate import UnloadOptions, generate_sample  # noqa: E402
from teem_assets.sample.spec import SampleSpec  # noqa: E402
from teem_assets.spark_session import build_spark_session  # noqa: E402

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)


def machine_cpu_seconds() -> float:
    """User and system CPU time of the whole machine so far (/proc/stat): the run's JVM and workers included."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(v) for v in fields[:3]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-small-day-") as folder:
        root = Path(folder) / "root"
        generate_sample(str(root), SPEC, UnloadOptions(slices=2, max_file_size=64 * 1024, gzip=True))
        url = args.url
        if url is None:
            import pgserver

            url = pgserver.get_server(str(Path(folder) / "pg")).get_uri()
        settings = {"TEEM_ROOT": str(root), "TEEM_HOME": str(root / ".teem"), "TEEM_POSTGRES_URL": url}
        settings["TEEM_PG_SCHEMA"] = f"bench_small_day_{int(time.time())}"
        os.environ.update(settings)  # this process is the bench's own: the definitions read their settings here
        from teem_assets.definitions import build_definitions

        spark = build_spark_session(  # up before the runs, kept across them; every job of them counted
            "bench-small-day", master="local[*]", extra_conf={"spark.ui.retainedJobs": "1000000"}
        )
        defs = build_definitions()
        run_job(defs, "snapshot_job")
        print(f"{'batch':<12}{'wall s':>8}{'cpu s':>8}{'jobs':>6}  steps (s)")
        for day in SPEC.batch_dates[: args.days]:
            tracker = spark.sparkContext.statusTracker()
            jobs_before = len(tracker.getJobIdsForGroup(None))
            cpu, started = machine_cpu_seconds(), time.monotonic()
            result = run_job(defs, "batch_job", day.isoformat())
            wall, used = time.monotonic() - started, machine_cpu_seconds() - cpu
            jobs = len(tracker.getJobIdsForGroup(None)) - jobs_before
            steps = {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.get_step_success_events()}
            listed = ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items())
            print(f"{day.isoformat():<12}{wall:>8.1f}{used:>8.1f}{jobs:>6}  {listed}", flush=True)
        spark.stop()


if __name__ == "__main__":
    main()
