"""Seconds per stage of the 14-day sample (every layer, one migration_job run) with Spark in the run's
process against the same run with each Spark stage spark-submitted to a Spark standalone cluster (a master
and a worker on this machine, started from the pyspark installation), in one invocation; prints both and
their ratio per step. Each run is a process of its own on a fresh folder root, into the embedded PostgreSQL.
Usage: python bench/stages.py [--days 14] [--scale 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' helper that starts a standalone cluster
from servers import spark_standalone_cluster  # noqa: E402

from teem_assets.sample.generate import UnloadOptions, generate_sample  # noqa: E402
from teem_assets.sample.spec import SampleSpec  # noqa: E402

CHILD = """
import json, sys
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as END, ASSET_PARTITION_RANGE_START_TAG as START
from teem_assets.definitions import build_definitions
from teem_assets.runner import instance
defs = build_definitions()
result = defs.resolve_job_def("migration_job").execute_in_process(
    instance=instance(), tags={START: sys.argv[1], END: sys.argv[2]}, raise_on_error=True)
print(json.dumps({e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.get_step_success_events()}))
"""


def run(where: str, sample: Path, work: Path, first: str, last: str) -> dict[str, float]:
    root = work / f"root-{where.split(':')[0]}"
    shutil.copytree(sample / "csv", root / "csv")
    env = {
        **os.environ,
        "TEEM_SPARK": where,
        "TEEM_ROOT": str(root),
        "TEEM_HOME": str(work / "teem"),
        "DAGSTER_HOME": str(root / "dagster"),
        "TEEM_PG_SCHEMA": f"bench_stages_{where.split(':')[0].replace('-', '_')}",
    }
    done = subprocess.run([sys.executable, "-c", CHILD, first, last], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{where}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args()
    spec = SampleSpec(start=dt.date(2019, 9, 1), days=args.days, seed=7, scale=args.scale)
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as folder:
        work = Path(folder)
        generate_sample(str(work / "sample"), spec, UnloadOptions(slices=2, max_file_size=64 * 1024, gzip=True))
        first, last = spec.batch_dates[0].isoformat(), spec.batch_dates[-1].isoformat()
        in_process = run("in-process", work / "sample", work, first, last)
        with spark_standalone_cluster(str(work), dict(os.environ), worker_tz="UTC") as master:
            cluster = run(master, work / "sample", work, first, last)
    print(f"{'step':<22}{'in-process s':>14}{'cluster s':>12}{'ratio':>8}")
    for step in in_process:
        print(f"{step:<22}{in_process[step]:>14.1f}{cluster[step]:>12.1f}{cluster[step] / in_process[step]:>8.2f}")
    total_in, total_cluster = sum(in_process.values()), sum(cluster.values())
    print(f"{'all steps':<22}{total_in:>14.1f}{total_cluster:>12.1f}{total_cluster / total_in:>8.2f}")


if __name__ == "__main__":
    main()
