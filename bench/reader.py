"""Throughput of the UNLOAD reader against DuckDB, Spark's own CSV reader and pyarrow's CSV parser, one run.

All of them convert the same unload text (fact_event_by_day rows without escaped delimiters, so that the CSV
readers can read it too) to Snappy Parquet with the catalogue's types. Each peer runs in a process of its
own (its peak RSS, summed over the process and its children, the JVM and Spark's Python workers included, is
sampled from outside); its first conversion in that process is reported as cold, then the median of the
next `--runs`. The script checks that the peers agree on the row count and on a fingerprint of columns every
peer reads exactly, and prints MB/s (decimal megabytes of text) and ratios.
Usage: python bench/reader.py [--gb 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from process_tree import own_memory
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from teem_assets.catalogue import TABLES
from teem_assets.redshift_types import Kind
from teem_assets.sample.generate import batch_rows
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import write_unload
from teem_assets.spark_session import build_spark_session
from teem_assets.spark_types import spark_schema
from teem_assets.unload.decode import arrow_schema
from teem_assets.unload.rules import RuleSet
from teem_assets.unload.spark_reader import UnloadConversion, convert_unloads

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
    """The convert stage's own call (`teem_assets.conversion`): text to Parquet, no DataFrame over it, the
    catalogue's rules evaluated on the way (for the batch of the sample's last day, which every row keeps)."""
    rules = RuleSet.of(TABLE, (dt.date(2019, 9, 1) + dt.timedelta(days=DAYS - 1)).isoformat(), dt.date.today())
    conversion = UnloadConversion(str(source), COLUMNS, str(out / "parquet"), str(out / "quarantine"), rules=rules)
    [converted] = convert_unloads(spark, [conversion])
    assert not converted.errors and converted.malformed == 0, (converted.errors, converted.malformed_sample)
    return converted.rows


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


DUCKDB_TYPES = {
    Kind.SMALLINT: "SMALLINT",
    Kind.INTEGER: "INTEGER",
    Kind.BIGINT: "BIGINT",
    Kind.REAL: "FLOAT",
    Kind.DOUBLE: "DOUBLE",
    Kind.BOOLEAN: "BOOLEAN",
    Kind.CHAR: "VARCHAR",
    Kind.VARCHAR: "VARCHAR",
    Kind.DATE: "DATE",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
}


def duckdb_type(kind: Kind, precision: int | None, scale: int | None) -> str:
    return f"DECIMAL({precision},{scale})" if kind is Kind.DECIMAL else DUCKDB_TYPES[kind]


def duckdb_copy(_: SparkSession | None, source: Path, out: Path) -> int:
    """DuckDB's CSV reader with every column typed, as many threads as Spark has cores, `COPY … TO` Parquet.
    It refuses a backslash escape together with `\\N` as NULL, so it reads without the escape: exact on
    this text but for a text value `\\N` (written `\\\\N`), which it keeps with both backslashes."""
    import duckdb

    columns = {c.name: duckdb_type(c.type.kind, c.type.precision, c.type.scale) for c in TABLE.columns}
    (out / "parquet").mkdir(parents=True)
    with duckdb.connect() as connection:
        connection.execute(f"SET threads = {os.cpu_count()}")
        connection.execute(
            f"""COPY (SELECT * FROM read_csv('{source}/{TABLE.name}_*_part_*', delim = '|', quote = '"',
                   escape = '"', nullstr = '\\N', header = false, auto_detect = false,
                   columns = {json.dumps(columns)}))
                TO '{out}/parquet/data.parquet' (FORMAT parquet, COMPRESSION snappy)"""
        )
    return pq.ParquetFile(out / "parquet" / "data.parquet").metadata.num_rows


# Run in this order; the first one's output (out/0) is bench/postgres_load.py's source.
PEERS: dict[str, tuple[str, Callable[[SparkSession | None, Path, Path], int], bool]] = {
    "teem": ("teem reader (numba scan, pyarrow write, a task a core)", ours, True),
    "duckdb": (f"DuckDB read_csv typed, {os.cpu_count()} threads, COPY TO Parquet", duckdb_copy, False),
    "pyarrow": ("pyarrow CSV parser alone (one process)", pyarrow_alone, False),
    "spark-csv": ("Spark read.csv -> write.parquet", spark_csv, True),
    "spark-csv-multiline": (
        "Spark read.csv multiLine -> write.parquet",
        functools.partial(spark_csv, multiline=True),
        True,
    ),
}


def fingerprint(out: Path) -> tuple:
    """Row count and values of columns every peer reads exactly (numbers, timestamps, a URL without escapes)."""
    pk, cancelled, updated, url = (
        "event_by_day_pk",
        "event_by_day_cancelled_at",
        "edw_event_by_day_updated_at",
        "event_by_day_platform_url",
    )
    table = ds.dataset(out / "parquet", format="parquet").to_table(columns=[pk, cancelled, updated, url])
    return (
        table.num_rows,
        pc.sum(table[pk]).as_py(),
        pc.count(table[cancelled]).as_py(),
        str(pc.max(table[updated]).as_py()),
        pc.sum(pc.utf8_length(table[url])).as_py(),
    )


def run_peer(key: str, source: Path, out: Path, runs: int) -> None:
    """In the child process: one cold conversion, then `runs` more; the seconds and rows as JSON, last line."""
    _, convert, needs_spark = PEERS[key]
    spark = build_spark_session("bench-reader", extra_conf={"spark.driver.memory": "8g"}) if needs_spark else None
    seconds, rows = [], 0
    for _ in range(runs + 1):
        shutil.rmtree(out, ignore_errors=True)
        begin = time.monotonic()
        rows = convert(spark, source, out)
        seconds.append(time.monotonic() - begin)
    if spark is not None:
        spark.stop()
    print(json.dumps({"seconds": seconds, "rows": rows}), flush=True)


def measured(key: str, source: Path, out: Path, runs: int) -> tuple[dict, float]:
    """A peer run in a child process; returns its report and the peak RSS (MB) of its process tree."""
    command = [sys.executable, __file__, "--peer", key, "--source", str(source), "--out", str(out), "--runs", str(runs)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    tree, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, sum(rss for _, rss in own_memory(tree)))
        time.sleep(0.05)
    output = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"{key} failed ({child.returncode})")
    return json.loads(output.strip().splitlines()[-1]), peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=str(Path(__file__).parent / "data"))
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        run_peer(args.peer, Path(args.source), Path(args.out), args.runs)
        return
    work = Path(args.work)
    source = work / "unload"
    started = time.monotonic()
    size = generate(source, args.gb)
    print(f"unload: {size / 1e6:.0f} MB of text in {len(list(source.glob('*_part_*')))} parts", flush=True)
    print(f"(generated in {time.monotonic() - started:.0f} s if it was not there)", flush=True)
    reports, peaks, prints = {}, {}, {}
    for index, (key, (name, _, _)) in enumerate(PEERS.items()):
        out = work / "out" / str(index)
        reports[key], peaks[key] = measured(key, source, out, args.runs)
        prints[key] = fingerprint(out)
        assert prints[key][0] == reports[key]["rows"], (key, prints[key], reports[key])
        times = ", ".join(f"{s:.1f}" for s in reports[key]["seconds"])
        print(f"{name}: {times} s (cold first), peak RSS {peaks[key]:.0f} MB", flush=True)
    assert len(set(prints.values())) == 1, f"the peers disagree: {prints}"
    cold = {key: report["seconds"][0] for key, report in reports.items()}
    warm = {key: statistics.median(report["seconds"][1:]) for key, report in reports.items()}
    print(f"\n{size / 1e6:.0f} MB, {prints['teem'][0]} rows x {len(COLUMNS)} columns; cold = first conversion in a")
    print(f"fresh process, warm = median of the {args.runs} after it; {os.cpu_count()} cores")
    print(f"  {'':<58} {'cold MB/s':>10} {'warm MB/s':>10} {'peak RSS':>10}")
    for key, (name, _, _) in PEERS.items():
        print(f"  {name:<58} {size / 1e6 / cold[key]:10.1f} {size / 1e6 / warm[key]:10.1f} {peaks[key]:7.0f} MB")
    for key in PEERS:
        if key != "teem":
            print(
                f"  ratio teem / {key}: cold {cold[key] / cold['teem']:.2f}x, warm {warm[key] / warm['teem']:.2f}x, "
                f"peak RSS {peaks['teem'] / peaks[key]:.2f}x"
            )


if __name__ == "__main__":
    main()
