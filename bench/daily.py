"""A whole daily batch through every stage in one Dagster run, as production runs it, against its ceilings:
seconds per stage and in all, and the peak RSS of the run's process tree (the run's process, its JVM and Spark's
Python workers) in all and per stage.

The sample is one day of unloads (the dimension snapshots and both fact tables) scaled so that the fact
text is about `--gb`; it is generated once under bench/data/daily/. The run is `migration_job` for that
date, in a child process with its own Dagster instance, against the PostgreSQL of `--url` (the embedded
server when none answers). Then, in another child, each stage's ceiling on the same rows (bench/ceilings.py:
the reader alone, a plain Iceberg append, a binary COPY into empty tables, DuckDB's aggregates), and the
checks that the run's rows are the ceilings' (every aggregate row DuckDB computed, every table's row count).
Several sizes (`--gb 1 4`) run one after another; each is then compared with the first.
Usage: python bench/daily.py [--gb 1 [4 …]] [--url postgresql://…]
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
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_tree import own_memory

from teem_assets.redshift_types import arrow_schema
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

HERE = Path(__file__).resolve().parent
DAY = dt.date(2019, 9, 2)
SCHEMA = "teem_bench_daily"
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
    ended: dict[str, float] = {}  # seconds since the epoch: where each step's peak RSS fell
    for entry in instance().all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
            ended[event.step_key] = entry.timestamp
    rows = {item.asset: item.rows for item in materialized}
    report = {"success": result.success, "total": total, "steps": seconds, "started": started, "ended": ended}
    report["rows"] = rows
    print(json.dumps(report), flush=True)


def _run_rows(url: str, schema: str, table: str, where: str = "") -> list[tuple]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}"."{table}" {where}')
        found = cursor.fetchall()
    connection.close()
    return found


def ceilings_child(url: str) -> None:
    """In the child: the ceilings, then the run's rows checked against theirs, as JSON."""
    from ceilings import measure

    from teem_assets.aggregates.outputs import AGGREGATES
    from teem_assets.spark_session import build_spark_session

    root = os.environ["TEEM_ROOT"]
    spark = build_spark_session("bench-ceilings")
    spark.range(1).count()  # the JVM up, as the run's is before its first stage
    found = measure(spark, root, url, DAY, Path(root).parent / "ceilings")
    spark.stop()
    monday = DAY - dt.timedelta(days=DAY.weekday())
    where = {"agg_hourly_space": f"WHERE date = '{DAY}'", "week_people_count": f"WHERE week_start_date = '{monday}'"}
    problems = []
    for name, aggregate in AGGREGATES.items():
        theirs = [
            tuple(row.values())
            for row in found.aggregates[name].cast(arrow_schema(aggregate.typed_columns)).to_pylist()
        ]
        ours = _run_rows(url, SCHEMA, name, where[name])
        if sorted(ours, key=repr) != sorted(theirs, key=repr):
            problems.append(f"{name}: the run has {len(ours)} rows of {DAY}, DuckDB {len(theirs)}; they differ")
    for table, rows in found.copied.items():
        if table not in AGGREGATES and (count := len(_run_rows(url, SCHEMA, table))) != rows:
            problems.append(f"{table}: the run loaded {count} rows, the ceiling's COPY {rows}")
    print(json.dumps({"seconds": found.seconds, "problems": problems}), flush=True)


def _kind(process: psutil.Process) -> str:
    """What a process of the run's tree is, for the peak's breakdown."""
    name = process.name()
    if name == "java":
        return "Spark's JVM"
    if name.startswith("postgres"):
        return "PostgreSQL"
    command = " ".join(process.cmdline())
    if "bench/daily.py" in command:
        return "the run's Python"
    return "Spark's Python workers" if "pyspark" in command else f"{name} ({command[:60]})"


Sample = tuple[float, dict[str, int]]  # seconds since the epoch, RSS by kind of process


def _peak(samples: list[Sample], start: float = 0.0, end: float = float("inf")) -> Sample:
    """The sample of the largest RSS in all between `start` and `end`."""
    inside = [sample for sample in samples if start <= sample[0] <= end]
    return max(inside, key=lambda sample: sum(sample[1].values()), default=(start, {}))


def _shares(sample: Sample) -> str:
    parts = sorted(sample[1].items(), key=lambda part: -part[1])
    return ", ".join(f"{kind} {rss / 2**20:,.0f}" for kind, rss in parts if rss >= 2**24)


def _child(mode: str, env: dict[str, str], log_path: Path) -> tuple[dict, list[Sample]]:
    """Run this script in `mode`; return its JSON report and its process tree's RSS by kind, every 0.1 s."""
    samples: list[Sample] = []
    with open(log_path, "a") as log:  # Spark's, the JVM's and Dagster's lines
        child = subprocess.Popen(
            [sys.executable, __file__, mode], env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        tree = psutil.Process(child.pid)
        while child.poll() is None:
            now: dict[str, int] = {}
            for process, rss in own_memory(tree):
                try:  # a short-lived process (Spark's shell helpers) may end while it is read
                    kind = _kind(process)
                except psutil.Error:
                    continue
                now[kind] = now.get(kind, 0) + rss
            samples.append((time.time(), now))
            time.sleep(0.1)
        output = child.stdout.read() if child.stdout else ""
    lines = output.strip().splitlines()
    if child.returncode or not lines:
        raise SystemExit(f"{mode} failed: see {log_path}")
    return json.loads(lines[-1]), samples


@dataclass(frozen=True)
class Measured:
    size: int  # bytes of fact text
    total: float  # the run's wall seconds
    steps: dict[str, float]
    ceilings: dict[str, float]
    peak: int  # bytes


def measure_size(gigabytes: float, url: str | None) -> Measured:
    work = HERE / "data" / "daily" / f"{gigabytes:g}gb"
    started = time.monotonic()
    size = generate(work / "root", gigabytes)
    print(f"\none day of unloads: {size / 1e6:.0f} MB of fact text (generated in {time.monotonic() - started:.0f} s "
          "if it was not there)", flush=True)  # fmt: skip
    for leftover in ("parquet", "warehouse", "quarantine", "ceilings"):
        shutil.rmtree(work / "root" / leftover, ignore_errors=True)
    shutil.rmtree(work / "home", ignore_errors=True)
    (work / "home").mkdir(parents=True)
    env = {**os.environ, "TEEM_ROOT": str(work / "root"), "TEEM_HOME": str(work / "home"), "TEEM_PG_SCHEMA": SCHEMA}
    if url:
        env["TEEM_POSTGRES_URL"] = url
    log = work / "home" / "run.log"
    report, samples = _child("--child", env, log)
    if not report["success"]:
        raise SystemExit(f"the run failed: see {log}")
    if not url:  # the embedded server the run started, in its home
        import pgserver

        env["TEEM_POSTGRES_URL"] = pgserver.get_server(str(work / "home" / "postgres")).get_uri()
    checked, _ = _child("--ceilings", env, log)
    if checked["problems"]:
        raise SystemExit("the run's rows are not the ceilings':\n  " + "\n  ".join(checked["problems"]))
    peak = _peak(samples)
    measured = Measured(size, report["total"], report["steps"], checked["seconds"], sum(peak[1].values()))
    print(f"migration_job for {DAY}, {size / 1e6:.0f} MB of fact text, {os.cpu_count()} cores; "
          "the run's rows equal the ceilings' (aggregates: every row; tables: row counts)")  # fmt: skip
    print(f"  {'step':<22} {'run s':>7} {'ceiling s':>10} {'ratio':>6}   peak RSS MB")
    for step, seconds in measured.steps.items():
        ceiling = measured.ceilings.get(step)
        beside = f"{ceiling:10.1f} {seconds / ceiling:5.2f}x" if ceiling else f"{'':17}"
        at, parts = _peak(samples, report["started"][step], report["ended"][step])
        print(f"  {step:<22} {seconds:7.1f} {beside}   {sum(parts.values()) / 2**20:,.0f} ({_shares((at, parts))})")
    ceiling = sum(measured.ceilings.values())
    print(f"  {'the run, in all':<22} {measured.total:7.1f} {ceiling:10.1f} {measured.total / ceiling:5.2f}x"
          f"   ({size / 1e6 / measured.total:.1f} MB/s of fact text)")  # fmt: skip
    during = next((step for step, end in sorted(report["ended"].items(), key=lambda e: e[1]) if peak[0] <= end), "")
    print(f"  peak RSS of the run's processes: {measured.peak / 2**20:,.0f} MB ({_shares(peak)}), during "
          f"{during or 'the run'}")  # fmt: skip
    for asset, rows in report["rows"].items():
        print(f"    {asset:<30} {rows} rows")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, nargs="+", default=[1.0])
    parser.add_argument("--url", default=os.environ.get("TEEM_TEST_POSTGRES_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ceilings", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child()
        return
    if args.ceilings:
        ceilings_child(os.environ["TEEM_POSTGRES_URL"])
        return
    sizes = [measure_size(gb, args.url) for gb in args.gb]
    first = sizes[0]
    for gb, other in zip(args.gb[1:], sizes[1:]):
        print(f"\n--gb {gb:g} against --gb {args.gb[0]:g}: {other.size / first.size:.2f}x the text, "
              f"{other.total / first.total:.2f}x the time, {other.peak / first.peak:.2f}x the peak RSS")  # fmt: skip


if __name__ == "__main__":
    main()
