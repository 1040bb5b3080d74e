"""Throughput of the UNLOAD reader against Spark's own CSV reader and pyarrow's CSV parser, one run.

All three convert the same unload text (fact_event_by_day rows without escapes, so that the CSV readers can
read it too) to Snappy Parquet with the catalogue's types; the script checks that they agree on the rows
and prints MB/s (decimal megabytes of text) and ratios. Usage: python bench/reader.py [--gb 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import batch_rows
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import write_unload
from teem_assets.spark_session import build_spark_session
from teem_assets.spark_types import spark_schema
from teem_assets.unload.decode import arrow_schema
from teem_assets.unload.spark_reader import read_unload

TABLE = TABLES["fact_event_by_day"]
COLUMNS = TABLE.typed_columns
BYTES_PER_SCALE_DAY = 90_000  # measured: fact_event_by_day text per scale unit and batch day
DAYS = 3


def generate(folder: Path, gigabytes: float) -> int:
    """Write the unload once (kept between runs); return its size in bytes."""
    scale = max(1, int(gigabytes * 1e9 / (BYTES_PER_SCALE_DAY * DAYS)))
    marker = folder / f"_done_scale_{scale}"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        spec = SampleSpec(start=dt.date(2019, 9, 1), days=DAYS, seed=11, scale=scale, plain_text=True)
        rows = itertools.chain.from_iterable(batch_rows(spec, TABLE.name, day) for day in spec.batch_dates)
        write_unload(rows, [t for _, t in COLUMNS], str(folder), f"{TABLE.name}_", slices=4)
        marker.touch()
    return sum(p.stat().st_size for p in folder.glob("*_part_*"))


def ours(spark: SparkSession, source: Path, out: Path) -> int:
    read = read_unload(spark, str(source), COLUMNS, str(out / "parquet"), str(out / "quarantine"))
    assert read.malformed == 0
    return read.rows


def spark_csv(spark: SparkSession, source: Path, out: Path, multiline: bool = False) -> int:
    """Spark's CSV reader cannot parse Redshift's t/f booleans: they are read as text and compared.
    `multiline` is the setting real unloads need (an escaped LF inside a value); it stops Spark from
    splitting files."""
    typed = spark_schema(COLUMNS)
    as_read = T.StructType(
        [T.StructField(f.name, T.StringType() if isinstance(f.dataType, T.BooleanType) else f.dataType) for f in typed]
    )
    frame = (
        spark.read.schema(as_read)
        .option("sep", "|")
        .option("quote", '"')
        .option("escape", "\\")
        .option("nullValue", "\\N")
        .option("mode", "FAILFAST")
        .option("multiLine", multiline)
        .csv(str(source / f"{TABLE.name}_*_part_*"))
    )
    frame = frame.select(
        [
            (F.col(f.name) == "t").alias(f.name) if isinstance(f.dataType, T.BooleanType) else F.col(f.name)
            for f in typed
        ]
    )
    frame.write.mode("overwrite").parquet(str(out / "parquet"))
    return spark.read.parquet(str(out / "parquet")).count()


def pyarrow_alone(spark: SparkSession, source: Path, out: Path) -> int:
    """pyarrow unescapes before it looks for nulls, so a non-text NULL `"\\N"` arrives as `N` (the bench's
    text has no value `N`, so treating it as NULL is safe here, and only here)."""
    schema = arrow_schema(COLUMNS)
    parse = pacsv.ParseOptions(delimiter="|", quote_char='"', escape_char="\\", double_quote=False)
    convert = pacsv.ConvertOptions(
        column_types=schema,
        null_values=["\\N", "N"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=["t"],
        false_values=["f"],
    )
    rows = 0
    (out / "parquet").mkdir(parents=True)
    for index, part in enumerate(sorted(source.glob("*_part_*"))):
        read = pacsv.ReadOptions(column_names=schema.names, block_size=32 << 20)
        reader = pacsv.open_csv(part, read_options=read, parse_options=parse, convert_options=convert)
        with pq.ParquetWriter(out / "parquet" / f"{index}.parquet", schema, compression="snappy") as writer:
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch], schema))
                rows += batch.num_rows
    return rows


def fingerprint(spark: SparkSession, out: Path) -> tuple:
    frame = spark.read.parquet(str(out / "parquet"))
    return tuple(
        frame.agg(
            F.count("*"),
            F.sum(F.col("event_by_day_pk").cast("decimal(38,0)")),
            F.count("event_by_day_cancelled_at"),
            F.max("edw_event_by_day_updated_at").cast("string"),
            F.sum(F.length("event_by_day_platform_url")),
        ).first()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=str(Path(__file__).parent / "data"))
    args = parser.parse_args()
    work = Path(args.work)
    source = work / "unload"
    started = time.monotonic()
    size = generate(source, args.gb)
    print(f"unload: {size / 1e6:.0f} MB of text in {len(list(source.glob('*_part_*')))} parts", flush=True)
    print(f"(generated in {time.monotonic() - started:.0f} s if it was not there)", flush=True)
    jvm_started = time.monotonic()
    spark = build_spark_session("bench-reader", extra_conf={"spark.driver.memory": "8g"})
    print(f"Spark started in {time.monotonic() - jvm_started:.1f} s (not counted below)", flush=True)
    peers: dict[str, Callable[[SparkSession, Path, Path], int]] = {
        "teem reader (Spark tasks, numba scan, pyarrow write)": ours,
        "Spark read.csv -> write.parquet": spark_csv,
        "Spark read.csv multiLine -> write.parquet": functools.partial(spark_csv, multiline=True),
        "pyarrow CSV parser alone (one process)": pyarrow_alone,
    }
    seconds: dict[str, list[float]] = {name: [] for name in peers}
    prints: dict[str, tuple] = {}
    for run in range(args.runs):
        for name, convert in peers.items():
            out = work / "out" / str(list(peers).index(name))
            shutil.rmtree(out, ignore_errors=True)
            begin = time.monotonic()
            rows = convert(spark, source, out)
            seconds[name].append(time.monotonic() - begin)
            prints[name] = fingerprint(spark, out)
            assert prints[name][0] == rows
            print(f"run {run + 1}: {name}: {seconds[name][-1]:.1f} s, {rows} rows", flush=True)
    assert len(set(prints.values())) == 1, f"the peers disagree: {prints}"
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    ours_name, csv_name, multiline_name, arrow_name = peers
    print(f"\n{size / 1e6:.0f} MB, {prints[ours_name][0]} rows x {len(COLUMNS)} columns, median of {args.runs} runs")
    for name, median in medians.items():
        print(f"  {name:<55} {size / 1e6 / median:7.1f} MB/s  ({median:.1f} s)")
    print(f"  ratio teem / Spark CSV:   {medians[csv_name] / medians[ours_name]:.2f}x")
    print(
        f"  ratio teem / Spark CSV with multiLine (what escaped line feeds need): "
        f"{medians[multiline_name] / medians[ours_name]:.2f}x"
    )
    print(f"  ratio teem / pyarrow:     {medians[arrow_name] / medians[ours_name]:.2f}x")
    print(f"  cores: {os.cpu_count()}")
    spark.stop()


if __name__ == "__main__":
    main()
