"""The PostgreSQL load of one fact batch against its peers, in one run, each peer a process of its own.

Peers: a plain binary COPY of the same rows into the empty table (the server's ceiling), `psql \\copy` of
them from a CSV file, `psql \\copy` into a staging table plus the same upsert statement (like for like),
this project's upsert into the empty table and into a realistic one (the batch 90% new keys and 10% newer
versions of rows the table holds, beside as many rows of other keys: a day of a table with history), its
dimension-style load (COPY straight into a new table), and Spark's JDBC writer with rewriteBatchedInserts
(the predecessor's way) when a PostgreSQL JDBC jar is on this machine. Prints rows/s, ratios and each
process's peak RSS.
Usage: python bench/postgres_load.py --url postgresql://postgres@127.0.0.1:5432/test [--rows 5000000] [--runs 1]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teem_assets.catalogue import TABLES
from teem_assets.postgres.copy import copy_batches
from teem_assets.postgres.ddl import create_table_sql
from teem_assets.postgres.keys import KeySet
from teem_assets.postgres.load import Fingerprint, fingerprint_of_rows, replace, table_fingerprint, upsert
from teem_assets.postgres.source import stream
from teem_assets.unload.decode import arrow_schema

TABLE = TABLES["fact_event_by_day"]
SCHEMA = "teem_bench"
HERE = Path(__file__).resolve().parent
# Spark writes row groups of at most 128 MB: about this many rows of this table.
ROW_GROUP_ROWS = 131_072


def make_batch(rows: int, work: Path) -> tuple[Path, Path]:
    """A batch of `rows` fact rows as Parquet and as CSV: bench/reader.py's output, tiled with new keys."""
    parquet, csv = work / "batch.parquet", work / "batch.csv"
    if parquet.exists() and pq.ParquetFile(parquet).metadata.num_rows == rows:
        return parquet, csv
    source = ds.dataset(HERE / "data" / "out" / "0" / "parquet").to_table()
    if source.num_rows == 0:
        raise SystemExit("run bench/reader.py first: its converted unload is this bench's source")
    _, first = np.unique(source.column("event_by_day_pk").to_numpy(), return_index=True)
    source = source.take(pa.array(np.sort(first)))  # one row per key, as a migrated table holds
    schema = arrow_schema(TABLE.typed_columns)
    pieces, copy = [], 0
    while sum(p.num_rows for p in pieces) < rows:
        key = pc.add(source.column("event_by_day_pk"), pa.scalar(copy * 10**15, pa.int64()))
        pieces.append(source.set_column(source.schema.get_field_index("event_by_day_pk"), "event_by_day_pk", key))
        copy += 1
    batch = pa.concat_tables(pieces).slice(0, rows).cast(schema)
    pq.write_table(batch, parquet, compression="snappy", row_group_size=ROW_GROUP_ROWS)
    pacsv.write_csv(batch, csv, pacsv.WriteOptions(include_header=False))
    return parquet, csv


UPDATED_SHARE = 0.1  # of the realistic batch: newer versions of rows the table holds
OTHER_KEYS = 5 * 10**17  # the history's keys the batch does not touch start here


SOURCE_SCHEMA = arrow_schema(TABLE.typed_columns)


def rows_of(parquet: Path) -> Iterator[pa.RecordBatch]:
    return stream(ds.dataset(parquet), TABLE.column_names)


def reset(url: str, name: str, history: Path | None = None) -> int:
    """An empty table, or one holding `history` (loaded before the clock starts); returns its rows."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        cursor.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        cursor.execute(create_table_sql(TABLE, SCHEMA, name))
        rows = 0
        if history is not None:
            rows = copy_batches(
                cursor, SCHEMA, name, arrow_schema(TABLE.typed_columns), stream(ds.dataset(history), TABLE.column_names)
            )
    connection.close()
    if history is not None:
        vacuumed = psycopg2.connect(url)
        vacuumed.autocommit = True  # VACUUM ANALYZE, as autovacuum would have by the next day
        with vacuumed.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {SCHEMA}.{name}")
        vacuumed.close()
    return rows


def make_history(batch: Path, work: Path) -> Path:
    """What the table holds before the realistic batch: an older version of every tenth row of the batch
    (updated a day earlier), and as many rows again of keys the batch does not touch."""
    history = work / "history.parquet"
    rows = pq.ParquetFile(batch).metadata.num_rows
    if history.exists() and pq.ParquetFile(history).metadata.num_rows == rows + rows // 10:
        return history
    table = pq.read_table(batch)
    key, updated = TABLE.primary_key[0], TABLE.updated_at
    older = table.take(pa.array(np.arange(0, rows, int(1 / UPDATED_SHARE))))
    older = older.set_column(
        older.schema.get_field_index(updated),
        updated,
        pc.subtract(older[updated], pa.scalar(86_400_000_000, pa.duration("us"))),
    )
    others = table.set_column(
        table.schema.get_field_index(key), key, pc.add(table[key], pa.scalar(OTHER_KEYS, pa.int64()))
    )
    pq.write_table(
        pa.concat_tables([others, older.cast(table.schema)]),
        history,
        compression="snappy",
        row_group_size=ROW_GROUP_ROWS,
    )
    return history


def peer_binary_copy(url: str, parquet: Path) -> None:
    """The ceiling: the rows as they are, in PostgreSQL's binary format, into the empty table, one transaction."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        copy_batches(
            cursor,
            SCHEMA,
            TABLE.name,
            arrow_schema(TABLE.typed_columns),
            stream(ds.dataset(parquet), TABLE.column_names),
        )
    connection.close()


def peer_ours(url: str, parquet: Path, mode: str) -> None:
    batches = stream(ds.dataset(parquet), TABLE.column_names)
    connection = psycopg2.connect(url)
    if mode == "replace":
        replace(connection, TABLE, SCHEMA, batches)
    else:  # the batch's keys, as the pipeline finds them in the batch's files before its load
        keys = KeySet.of(pq.read_table(parquet, columns=[TABLE.primary_key[0]]).column(0))
        upsert(connection, TABLE, SCHEMA, batches, keys)
    connection.close()


def peer_jdbc(url: str, parquet: Path, jar: str) -> None:
    from teem_assets.spark_session import build_spark_session

    spark = build_spark_session("bench-jdbc", extra_conf={"spark.jars": jar, "spark.driver.memory": "4g"})
    parsed = psycopg2.extensions.parse_dsn(url)
    jdbc = f"jdbc:postgresql://{parsed.get('host', '127.0.0.1')}:{parsed.get('port', 5432)}/{parsed['dbname']}"
    (
        spark.read.parquet(str(parquet))
        .write.format("jdbc")
        .option("url", jdbc + "?reWriteBatchedInserts=true")
        .option("dbtable", f"{SCHEMA}.{TABLE.name}")
        .option("user", parsed.get("user", "postgres"))
        .option("batchsize", 10_000)
        .option("driver", "org.postgresql.Driver")
        .mode("append")
        .save()
    )
    spark.stop()


def measure(
    url: str, key: str, command: list[str], history: Path, parquet: Path, batch_print: Fingerprint, rows: int
) -> tuple[float, int]:
    """One peer's load into a fresh table (the history first for the realistic batch), checked: the table
    holds the batch's version of every batch key and keeps the history's other keys."""
    held = reset(url, TABLE.name, history if key == "upsert-realistic" else None)
    seconds, peak = timed(command)
    target = f"{SCHEMA}.{TABLE.name}"
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), max({TABLE.updated_at}) FROM {target}")
        loaded, newest = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {target} WHERE {TABLE.primary_key[0]} < %s", (OTHER_KEYS,))
        batch_rows = cursor.fetchone()[0]
        keys = KeySet.of(pq.read_table(parquet, columns=[TABLE.primary_key[0]])[0])
        found = table_fingerprint(cursor, TABLE, SCHEMA, keys)
    connection.close()
    if found != batch_print:
        print(f"{key}: the batch's keys do not hold the batch's rows: {found} != {batch_print}", flush=True)
        assert key == "jdbc", "the loads must all end with the batch's rows"
    # the history's older versions were replaced, its other keys stay: rows of the batch + other keys
    expected = rows + (held - len(range(0, rows, int(1 / UPDATED_SHARE))) if held else 0)
    assert (loaded, batch_rows) == (expected, rows), (key, loaded, batch_rows, expected)
    assert newest is not None
    return seconds, peak


def _psql(url: str, script: str) -> list[str]:
    return ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", script]


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of a child process; GNU time reports the RSS of the program itself
    (wait4 would count the pages a fork shares with this process before its exec)."""
    report = HERE / "data" / "postgres" / "rss"
    wrapper = ["/usr/bin/time", "-f", "%M", "-o", str(report)] if os.path.exists("/usr/bin/time") else []
    started = time.monotonic()
    child = subprocess.Popen([*wrapper, *command])
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[:3]} failed")
    kilobytes = int(report.read_text().split()[-1]) if wrapper else usage.ru_maxrss
    return seconds, kilobytes // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("TEEM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=1, help="rounds over the peers; medians are compared")
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--jar", default=os.environ.get("TEEM_PG_JDBC_JAR"))
    parser.add_argument(
        "--only", help="comma-separated peers: binary, upsert-realistic, psql, psql+upsert, upsert, replace, jdbc"
    )
    args = parser.parse_args()
    work = HERE / "data" / "postgres"
    work.mkdir(parents=True, exist_ok=True)
    parquet, csv = work / "batch.parquet", work / "batch.csv"
    me = [sys.executable, __file__, "--url", args.url, "--rows", str(args.rows)]
    if args.peer == "make":
        make_history(make_batch(args.rows, work)[0], work)
        return
    if not args.peer:  # made in a child, so that this process stays small and its children's RSS is their own
        subprocess.run([*me, "--peer", "make"], check=True)
    if args.peer:
        if args.peer == "jdbc":
            peer_jdbc(args.url, parquet, args.jar)
        elif args.peer == "binary":
            peer_binary_copy(args.url, parquet)
        else:
            peer_ours(args.url, parquet, args.peer)
        return
    columns = ", ".join(TABLE.column_names)
    target = f"{SCHEMA}.{TABLE.name}"
    copy = f"\\copy {target} ({columns}) FROM '{csv}' WITH (FORMAT csv)"
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in TABLE.column_names if c not in TABLE.primary_key)
    staged = (
        f"BEGIN; CREATE TEMP TABLE teem_stage (LIKE {target}) ON COMMIT DROP; "
        f"\\copy teem_stage ({columns}) FROM '{csv}' WITH (FORMAT csv)\n"
        f"INSERT INTO {target} AS t SELECT * FROM teem_stage ON CONFLICT ({TABLE.primary_key[0]}) DO UPDATE SET "
        f"{update} WHERE EXCLUDED.{TABLE.updated_at} >= t.{TABLE.updated_at}; COMMIT;"
    )
    staged_file = work / "staged.sql"
    staged_file.write_text(staged)
    peers: dict[str, tuple[str, list[str]]] = {
        "binary": ("binary COPY into the empty table (the ceiling)", [*me, "--peer", "binary"]),
        "upsert-realistic": (
            "teem upsert, 90% new keys, 10% newer versions",
            [*me, "--peer", "upsert-realistic"],
        ),
        "psql": ("psql \\copy of CSV into the table", _psql(args.url, copy)),
        "psql+upsert": ("psql \\copy into staging + the same upsert", ["psql", args.url, "-q", "-f", str(staged_file)]),
        "upsert": ("teem upsert (facts)", [*me, "--peer", "upsert"]),
        "replace": ("teem replace (dimensions: COPY into a new table)", [*me, "--peer", "replace"]),
    }
    found = sorted(glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/postgresql/*/*.jar")))
    jar = args.jar or (found[-1] if found else None)
    if jar:
        peers["jdbc"] = (
            f"Spark JDBC, rewriteBatchedInserts ({os.path.basename(jar)})",
            [*me, "--peer", "jdbc", "--jar", jar],
        )
    else:
        print("no PostgreSQL JDBC jar on this machine (TEEM_PG_JDBC_JAR): Spark JDBC skipped")
    if args.only:
        peers = {key: peer for key, peer in peers.items() if key in args.only.split(",")}
    history = work / "history.parquet"
    batch_print = fingerprint_of_rows(TABLE, rows_of(parquet))
    times: dict[str, list[float]] = {key: [] for key in peers}
    for _ in range(args.runs):  # round after round, so that a slow spell of the machine falls on every peer
        for key, (name, command) in peers.items():
            elapsed, peak = measure(args.url, key, command, history, parquet, batch_print, args.rows)
            times[key].append(elapsed)
            print(f"{name}: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, peak RSS {peak} MB", flush=True)
    seconds = {key: statistics.median(found) for key, found in times.items()}
    print(f"\n{args.rows:,} rows x {len(TABLE.columns)} columns of {TABLE.name}, median of {args.runs} run(s) each")
    for key, (name, _) in peers.items():
        print(f"  {name:<58} {seconds[key]:6.1f} s  {args.rows / seconds[key]:>10,.0f} rows/s")
    ratios = [
        ("teem upsert, realistic batch / binary COPY (the ceiling)", "binary", "upsert-realistic"),
        ("teem upsert, empty table / binary COPY", "binary", "upsert"),
        ("teem upsert / psql copy of CSV", "psql", "upsert"),
        ("teem upsert / psql copy + same upsert", "psql+upsert", "upsert"),
        ("teem replace / binary COPY", "binary", "replace"),
        ("teem upsert / Spark JDBC", "jdbc", "upsert"),
    ]
    for label, peer, ours in ratios:
        if peer in seconds and ours in seconds:
            print(f"  {label + ':':<58} {seconds[peer] / seconds[ours]:.2f}x")
    connection = psycopg2.connect(args.url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    connection.close()


if __name__ == "__main__":
    main()
