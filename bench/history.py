"""Does a daily batch cost the same after years of history? Two measurements in one invocation.

1. One batch's run (batch_job, every stage in the run's process) after 14, 90 and 365 days of history, stage
   by stage, with each stage's ratio to the 14-day run. History is built cheaply: a small sample (--scale 1,
   about 380 KB of unloads a day), migrated as range runs of --chunk days (the first with the dimension
   snapshots), then the timed batch is the day after. Each history size is a fresh folder root of its own, into
   the embedded PostgreSQL.
2. One tick of batch_unload_sensor with five years of daily unloads (both fact tables, --parts parts and a
   manifest each) on moto's S3 server on loopback, after a first tick (a sweep) has set its cursor and a new
   day has arrived, against its floor: a bare boto3 listing of the new keys (StartAfter the sensor's window).
   The sweep itself is timed too, against a bare listing of every key. Medians of 3.

Usage: python bench/history.py [--histories 14,90,365] [--chunk 30] [--scale 1] [--years 5] [--parts 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import boto3  # noqa: E402
import dagster as dg  # noqa: E402
import requests  # noqa: E402
from dagster_aws.s3 import S3Resource  # noqa: E402
from servers import free_port, running, wait_for  # noqa: E402

from jobs.batch_jobs import batch_jobs  # noqa: E402
from jobs.sensors import unload_sensors  # noqa: E402
from resources.storage import StorageResource  # noqa: E402
from teem_assets.batch_watch import WINDOW_DAYS  # noqa: E402
from teem_assets.sample.generate import UnloadOptions, generate_sample  # noqa: E402
from teem_assets.sample.spec import SampleSpec  # noqa: E402
from teem_assets.settings import load  # noqa: E402

FIRST = dt.date(2019, 9, 1)
CHILD = """
import json, sys
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as END, ASSET_PARTITION_RANGE_START_TAG as START
from teem_assets.definitions import build_definitions
from teem_assets.runner import instance
defs = build_definitions()
result = defs.resolve_job_def(sys.argv[1]).execute_in_process(
    instance=instance(), tags={START: sys.argv[2], END: sys.argv[3]}, raise_on_error=True)
print(json.dumps({e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.get_step_success_events()}))
"""


def _run(job: str, first: dt.date, last: dt.date, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, job, first.isoformat(), last.isoformat()], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{job} {first}..{last}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_batch_after(history: int, sample: Path, work: Path, chunk: int) -> dict[str, float]:
    """Step seconds of the batch run of the day after `history` days, on a root holding those days."""
    root = work / f"root-{history}"
    days = [FIRST + dt.timedelta(days=n) for n in range(history + 1)]
    for table in (sample / "csv").iterdir():
        if (table / "snapshot").exists():
            shutil.copytree(table / "snapshot", root / "csv" / table.name / "snapshot")
        for day in days:
            unload = table / "incremental" / day.isoformat()
            if unload.exists():
                shutil.copytree(unload, root / "csv" / table.name / "incremental" / day.isoformat())
    env = {
        **os.environ,
        "TEEM_SPARK": "in-process",
        "TEEM_ROOT": str(root),
        "TEEM_HOME": str(work / "teem"),
        "DAGSTER_HOME": str(root / "dagster"),
        "TEEM_PG_SCHEMA": f"bench_history_{history}",
        # The sample's weekly rhythm fails the trailing-median volume check on some days (issue 14's baseline):
        # the check still runs and costs what it costs, it just does not stop the history being built.
        "TEEM_VOLUME_THRESHOLD": "0",
    }
    started = time.monotonic()
    for index, first in enumerate(range(0, history, chunk)):
        last = min(first + chunk, history) - 1
        _run("migration_job" if index == 0 else "batch_job", days[first], days[last], env)
    print(f"  {history} days of history built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    started = time.monotonic()
    steps = _run("batch_job", days[history], days[history], env)
    steps["whole run (wall)"] = time.monotonic() - started
    shutil.rmtree(root)
    return steps


def batch_runs(histories: list[int], chunk: int, scale: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        work = Path(folder)
        spec = SampleSpec(start=FIRST, days=max(histories) + 1, seed=7, scale=scale)
        started = time.monotonic()
        generate_sample(str(work / "sample"), spec, UnloadOptions(slices=2, max_file_size=64 * 1024, gzip=True))
        print(f"  sample of {spec.days} days generated in {time.monotonic() - started:.0f} s", file=sys.stderr)
        found = {h: one_batch_after(h, work / "sample", work, chunk) for h in histories}
    base = histories[0]
    header = "".join(f"{f'{h} days s':>14}" for h in histories) + "".join(f"{f'{h}/{base}':>9}" for h in histories[1:])
    print(f"{'one batch, step':<26}{header}")
    for step in found[base]:
        seconds = "".join(f"{found[h][step]:>14.1f}" for h in histories)
        ratios = "".join(f"{found[h][step] / found[base][step]:>9.2f}" for h in histories[1:])
        print(f"{step:<26}{seconds}{ratios}")


def _median_seconds(action, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _unload_keys(day: dt.date, parts: int) -> list[str]:
    keys = []
    for table in ("fact_event_by_day", "fact_attendance"):
        folder = f"warehouse/csv/{table}/incremental/{day.isoformat()}"
        keys += [f"{folder}/{table}_{n:04d}_part_00" for n in range(parts)] + [f"{folder}/{table}_manifest"]
    return keys


def sensor_tick(years: int, parts: int) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", TEEM_UNLOAD_SETTLE_SECONDS="3600")  # fmt: skip
    first = dt.date(2020, 1, 1)
    dates = [first + dt.timedelta(days=n) for n in range(365 * years)]
    with tempfile.TemporaryDirectory() as work:
        moto = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        with running(moto, dict(os.environ), work, os.path.join(work, "moto.log")):
            wait_for(lambda: requests.get(endpoint, timeout=2).ok, 60, "moto's S3 server")
            client = boto3.client("s3")
            client.create_bucket(Bucket="teem")
            keys = [key for day in dates for key in _unload_keys(day, parts)]
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda key: client.put_object(Bucket="teem", Key=key, Body=b""), keys))
            resources = {"storage": StorageResource(root="s3://teem/warehouse"), "s3": S3Resource()}
            settings = load()
            batch_unload_sensor = unload_sensors(settings, batch_jobs(settings.max_runtime_seconds))[0]

            def evaluate(cursor: str | None) -> dg.SensorResult:
                return batch_unload_sensor(dg.build_sensor_context(cursor=cursor, resources=resources))

            started = time.perf_counter()
            swept = evaluate(None)
            sweep = time.perf_counter() - started
            assert len(swept.run_requests) == len(dates), len(swept.run_requests)
            new_day = dates[-1] + dt.timedelta(days=1)
            new_keys = _unload_keys(new_day, parts)
            for key in new_keys:
                client.put_object(Bucket="teem", Key=key, Body=b"")

            def tick() -> None:
                result = evaluate(swept.cursor)
                assert [r.partition_key for r in result.run_requests] == [new_day.isoformat()]

            window = (dates[-1] - dt.timedelta(days=WINDOW_DAYS)).isoformat()

            def new_listing() -> None:
                found = 0
                for table in ("fact_event_by_day", "fact_attendance"):
                    prefix = f"warehouse/csv/{table}/incremental/"
                    pages = client.get_paginator("list_objects_v2").paginate(
                        Bucket="teem", Prefix=prefix, StartAfter=prefix + window
                    )
                    found += sum(len(p.get("Contents", [])) for p in pages)
                assert found == (WINDOW_DAYS + 2) * len(new_keys)

            def full_listing() -> None:
                pages = client.get_paginator("list_objects_v2").paginate(Bucket="teem", Prefix="warehouse/csv/")
                assert sum(len(p.get("Contents", [])) for p in pages) == len(keys) + len(new_keys)

            ticked, floor = _median_seconds(tick), _median_seconds(new_listing)
            everything = _median_seconds(full_listing)
    size = len(swept.cursor)
    print(f"\nbatch_unload_sensor, {len(dates)} daily unloads ({len(keys)} keys) on moto's S3, cursor {size} B")
    print(f"{'':<34}{'seconds':>9}{'floor s':>9}{'ratio':>8}")
    print(f"{'a tick (the window, a new day)':<34}{ticked:>9.3f}{floor:>9.3f}{ticked / floor:>8.2f}")
    print(f"{'the first tick, a sweep (once)':<34}{sweep:>9.3f}{everything:>9.3f}{sweep / everything:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--histories", default="14,90,365")
    parser.add_argument("--chunk", type=int, default=30)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--only", choices=["batch", "sensor"])
    args = parser.parse_args()
    if args.only != "sensor":
        batch_runs([int(h) for h in args.histories.split(",")], args.chunk, args.scale)
    if args.only != "batch":
        sensor_tick(args.years, args.parts)


if __name__ == "__main__":
    main()
