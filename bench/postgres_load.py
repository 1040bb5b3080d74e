"""The PostgreSQL load of one fact batch against its peers, in one run, each peer a process of its own.

Peers: `psql \\copy` of the same rows from a CSV file straight into the table (the ceiling), `psql \\copy`
into a staging table plus the same upsert statement (like for like), this project's upsert (Parquet ->
Arrow CSV -> COPY, serialisation overlapped, then INSERT … ON CONFLICT), its dimension-style load
(COPY straight into a new table), and Spark's JDBC writer with rewriteBatchedInserts (the predecessor's
way) when a PostgreSQL JDBC jar is on this machine. Prints rows/s, ratios and each process's peak RSS.
Usage: python bench/postgres_load.py --url postgresql://postgres@127.0.0.1:5432/test [--rows 5000000]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
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
from teem_assets.postgres.ddl import create_table_sql
from teem_assets.postgres.load import replace, upsert
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


def reset(url: str, name: str) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        cursor.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        cursor.execute(create_table_sql(TABLE, SCHEMA, name))
    connection.close()


def peer_ours(url: str, parquet: Path, mode: str) -> None:
    batches = stream(ds.dataset(parquet), TABLE.column_names)
    connection = psycopg2.connect(url)
    (upsert if mode == "upsert" else replace)(connection, TABLE, SCHEMA, batches)
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
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--jar", default=os.environ.get("TEEM_PG_JDBC_JAR"))
    parser.add_argument("--only", help="comma-separated peers: psql, psql+upsert, upsert, replace, jdbc")
    args = parser.parse_args()
    work = HERE / "data" / "postgres"
    work.mkdir(parents=True, exist_ok=True)
    parquet, csv = work / "batch.parquet", work / "batch.csv"
    me = [sys.executable, __file__, "--url", args.url, "--rows", str(args.rows)]
    if args.peer == "make":
        make_batch(args.rows, work)
        return
    if not args.peer:  # made in a child, so that this process stays small and its children's RSS is their own
        subprocess.run([*me, "--peer", "make"], check=True)
    if args.peer:
        if args.peer == "jdbc":
            peer_jdbc(args.url, parquet, args.jar)
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
        "psql": ("psql \\copy into the table (the ceiling)", _psql(args.url, copy)),
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
    seconds: dict[str, float] = {}
    for key, (name, command) in peers.items():
        reset(args.url, TABLE.name)
        seconds[key], peak = timed(command)
        connection = psycopg2.connect(args.url)
        with connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {target}")
            loaded = cursor.fetchone()[0]
        connection.close()
        assert loaded == args.rows, (name, loaded)
        print(f"{name}: {seconds[key]:.1f} s, {args.rows / seconds[key]:,.0f} rows/s, peak RSS {peak} MB", flush=True)
    print(f"\n{args.rows:,} rows x {len(TABLE.columns)} columns of {TABLE.name}, one run each")
    if set(seconds) != set(peers) or len(peers) < 4:
        return
    print(f"  teem upsert / psql copy (the ceiling):  {seconds['psql'] / seconds['upsert']:.2f}x")
    print(f"  teem upsert / psql copy + same upsert:  {seconds['psql+upsert'] / seconds['upsert']:.2f}x")
    print(f"  teem replace / psql copy (the ceiling): {seconds['psql'] / seconds['replace']:.2f}x")
    if "jdbc" in seconds:
        print(f"  teem upsert / Spark JDBC:               {seconds['jdbc'] / seconds['upsert']:.2f}x")
    connection = psycopg2.connect(args.url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    connection.close()


if __name__ == "__main__":
    main()
