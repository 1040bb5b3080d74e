"""The migrate step on Iceberg: one fact batch (bench/reader.py's unload, about 1 GB of text) upserted with
MERGE INTO, against a plain Spark append of the same rows to the same kind of table and against the first
round's way, a rewrite of every partition the batch touches, in one run.

Five timings, each on a fresh local-root catalog: MERGE into an empty table (every key new), the same MERGE
again (every key there, nothing newer: the update path), `writeTo(...).append()` of the same rows (the peer:
what writing them costs with no upsert at all), and the partition rewrite into an empty table and again (the
touched `created_date` partitions read, the batch's rows put in, the newest version of each key kept, the
partitions overwritten). Usage: python bench/migrate.py [--gb 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from reader import COLUMNS, TABLE, generate

from teem_assets.iceberg import CatalogSettings, use_catalog
from teem_assets.migration import (
    CREATED_DATE,
    ensure_migrated_table,
    latest_versions,
    migrate_batches,
    unmigratable,
    with_created_date,
)
from teem_assets.spark_session import build_spark_session
from teem_assets.unload.spark_reader import read_unload


def batch_rows(spark: SparkSession, files: list[str]):
    rows = spark.read.parquet(*files)
    return latest_versions(with_created_date(rows.where(~unmigratable(TABLE)), TABLE), TABLE)


def rewrite_partitions(spark: SparkSession, files: list[str], target: str) -> None:
    """The first round's migration: every created_date partition the batch touches rewritten whole."""
    ensure_migrated_table(spark, TABLE, target)
    batch = batch_rows(spark, files).select(*TABLE.column_names, CREATED_DATE)
    dates = [row[0] for row in batch.select(CREATED_DATE).distinct().collect()]
    current = spark.table(target).where(F.col(CREATED_DATE).isin(dates)).select(*TABLE.column_names, CREATED_DATE)
    merged = latest_versions(current.unionByName(batch), TABLE)
    merged.select(*TABLE.column_names, CREATED_DATE).writeTo(target).overwritePartitions()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=str(Path(__file__).parent / "data"))
    args = parser.parse_args()
    work = Path(args.work)
    size = generate(work / "unload", args.gb)
    spark = build_spark_session("bench-migrate", extra_conf={"spark.driver.memory": "8g"})
    parquet = work / "migrate" / "batch"
    if not (parquet / "_done").exists():
        shutil.rmtree(parquet.parent, ignore_errors=True)
        read_unload(spark, str(work / "unload"), COLUMNS, str(parquet), str(work / "migrate" / "quarantine"))
        (parquet / "_done").touch()
    files = sorted(str(p) for p in parquet.glob("*.parquet"))
    print(f"batch: {size / 1e6:.0f} MB of text, {len(files)} Parquet files", flush=True)

    def fresh(run: int, name: str) -> str:
        root = work / "migrate" / f"{name}-{run}"
        shutil.rmtree(root, ignore_errors=True)
        return f"{use_catalog(spark, CatalogSettings(str(root)))}.migrated.{TABLE.name}"

    seconds: dict[str, list[float]] = {
        "merge, all keys new": [],
        "merge again, all keys there": [],
        "append": [],
        "partition rewrite, empty table": [],
        "partition rewrite again": [],
    }
    for run in range(args.runs):
        target = fresh(run, "merge")
        begin = time.monotonic()
        report = migrate_batches(spark, TABLE, files, target, str(work / "migrate" / "q"))
        seconds["merge, all keys new"].append(time.monotonic() - begin)
        begin = time.monotonic()
        migrate_batches(spark, TABLE, files, target, str(work / "migrate" / "q"))
        seconds["merge again, all keys there"].append(time.monotonic() - begin)

        appended = fresh(run, "append")
        begin = time.monotonic()
        ensure_migrated_table(spark, TABLE, appended)
        batch_rows(spark, files).select(*TABLE.column_names, CREATED_DATE).writeTo(appended).append()
        seconds["append"].append(time.monotonic() - begin)

        rewritten = fresh(run, "rewrite")
        for name in ("partition rewrite, empty table", "partition rewrite again"):
            begin = time.monotonic()
            rewrite_partitions(spark, files, rewritten)
            seconds[name].append(time.monotonic() - begin)
        assert spark.table(rewritten).count() == spark.table(target).count()  # the same rows either way
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items()), flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\n{report.rows_in} rows x {len(COLUMNS)} columns, {len(report.partitions)} created dates, "
          f"median of {args.runs} runs on {os.cpu_count()} cores")  # fmt: skip
    for name, median in medians.items():
        print(f"  {name:<32} {median:7.1f} s  {median / medians['append']:.2f}x of the append")
    for merge, rewrite in (
        ("merge, all keys new", "partition rewrite, empty table"),
        ("merge again, all keys there", "partition rewrite again"),
    ):
        print(f"  {merge} / {rewrite}: {medians[merge] / medians[rewrite]:.2f}x the time")
    spark.stop()


if __name__ == "__main__":
    main()
