"""The ceilings of bench/daily.py: each stage of a daily run done the plainest fast way, on the same rows.

- conversion: the reader alone (`convert_unloads`, no Dagster, no checks, no pointer);
- migration: a plain Iceberg append of the converted rows (newest version of each key) into empty tables;
- PostgreSQL loads: a binary COPY of the same rows into empty tables, one transaction;
- aggregates: DuckDB computing both aggregates of the day from the converted Parquet, with the reference
  SQL's logic (`teem_assets/aggregates/reference.py`) in DuckDB's dialect. bench/daily.py checks that its rows
  equal the run's.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pyarrow as pa
from psycopg2 import sql
from pyspark.sql import SparkSession

from teem_assets import converted, layout
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.aggregates.reference import REFERENCE
from teem_assets.catalogue import DIMENSIONS, FACTS, Columns, Table
from teem_assets.iceberg import CatalogSettings, use_catalog
from teem_assets.migration import CREATED_DATE, ensure_migrated_table, latest_versions, unmigratable, with_created_date
from teem_assets.postgres.copy import copy_batches
from teem_assets.postgres.ddl import create_table_sql
from teem_assets.redshift_types import arrow_schema
from teem_assets.unload.spark_reader import UnloadConversion, convert_unloads

SCHEMA = "teem_bench_ceilings"


def timed(work: Callable[[], object]) -> float:
    begin = time.monotonic()
    work()
    return time.monotonic() - begin


def _unload(root: str, table: Table, day: dt.date) -> str:
    return layout.raw_snapshot(root, table.name) if table.is_dimension else layout.raw_batch(root, table.name, day)


def _parquet(root: str, table: Table, day: dt.date) -> list[str]:
    folder = (
        layout.parquet_snapshot(root, table.name) if table.is_dimension else layout.parquet_batch(root, table.name, day)
    )
    batch = converted.read(folder)
    if batch is None:
        raise SystemExit(f"{folder}: not converted; the run must come first")
    return batch.uris


def reader_alone(spark: SparkSession, root: str, tables: list[Table], day: dt.date, scratch: Path) -> None:
    conversions = [
        UnloadConversion(_unload(root, t, day), t.typed_columns, str(scratch / t.name), str(scratch / f"{t.name}-q"))
        for t in tables
    ]
    for done in convert_unloads(spark, conversions):
        assert not done.errors, done.errors


def iceberg_append(spark: SparkSession, root: str, tables: list[Table], day: dt.date, scratch: Path) -> None:
    catalog = use_catalog(spark, CatalogSettings(str(scratch / "iceberg")))
    for table in tables:
        identifier = f"{catalog}.migrated.{table.name}"
        ensure_migrated_table(spark, table, identifier)
        rows = spark.read.parquet(*_parquet(root, table, day)).where(~unmigratable(table))
        latest_versions(with_created_date(rows, table), table).select(*table.column_names, CREATED_DATE).writeTo(
            identifier
        ).append()


def _fresh_table(cursor: psycopg2.extensions.cursor, columns: Columns) -> None:
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(columns.name)))
    cursor.execute(create_table_sql(columns, SCHEMA))


Batches = Callable[[], Iterable[pa.RecordBatch]]
COPY_BATCH_ROWS = 65_536


def binary_copy(url: str, sources: list[tuple[Columns, Batches]], copied: dict[str, int]) -> None:
    """Each (table, its record batches) COPYed in binary into a fresh empty table, all in one transaction;
    the rows of each go in `copied`."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        for columns, batches in sources:
            _fresh_table(cursor, columns)
            types = arrow_schema(columns.typed_columns)
            copied[columns.name] = copy_batches(cursor, SCHEMA, columns.name, types, batches())
    connection.close()


def latest_rows(root: str, tables: list[Table], day: dt.date) -> list[tuple[Columns, Batches]]:
    """The rows each migrated table holds after this one day (the newest version of each key), read before
    the COPY is timed."""
    connection = duckdb.connect()
    sources: list[tuple[Columns, Batches]] = []
    for table in tables:
        connection.execute(_latest_view(table, _parquet(root, table, day)))
        columns = ", ".join(f'"{c}"' for c in table.column_names)
        rows = connection.sql(f'SELECT {columns} FROM "{table.name}"').to_arrow_table()
        sources.append((table, lambda rows=rows: rows.to_batches(max_chunksize=COPY_BATCH_ROWS)))
    connection.close()
    return sources


def duckdb_reference(aggregate: str) -> str:
    """The reference SELECT in DuckDB's dialect, over views named as the tables, the days in `teem_agg_dates`
    and the weeks in `teem_agg_weeks`."""
    text = REFERENCE[aggregate].replace("{schema}.", "").replace("pg_temp.", "")
    text = re.sub(r"make_interval\(hours => ([^)]+)\)", r"to_hours(\1)", text)
    return text.replace("generate_series(0, 23) AS h", "generate_series(0, 23) AS hours(h)")


def _latest_view(table: Table, files: list[str]) -> str:
    """The migrated rows of `table` from its converted files: unmigratable rows out, the newest version of each key."""
    needed = " OR ".join(f'"{c}" IS NULL' for c in (*table.primary_key, table.created_at, table.updated_at))
    keys = ", ".join(f'"{c}"' for c in table.primary_key)
    listed = ", ".join(f"'{f}'" for f in files)
    return (
        f'CREATE VIEW "{table.name}" AS SELECT * FROM read_parquet([{listed}]) WHERE NOT ({needed}) '
        f'QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY "{table.updated_at}" DESC) = 1'
    )


def duckdb_aggregates(root: str, day: dt.date) -> dict[str, pa.Table]:
    """Both aggregates of `day` (agg_hourly_space) and its ISO week (week_people_count) by DuckDB."""
    connection = duckdb.connect()
    for table in (*DIMENSIONS, *FACTS):
        connection.execute(_latest_view(table, _parquet(root, table, day)))
    connection.execute("CREATE TEMP TABLE teem_agg_dates AS SELECT DATE '" + day.isoformat() + "' AS day")
    monday = day - dt.timedelta(days=day.weekday())
    connection.execute("CREATE TEMP TABLE teem_agg_weeks AS SELECT DATE '" + monday.isoformat() + "' AS week_start")
    return {name: connection.sql(duckdb_reference(name)).to_arrow_table() for name in AGGREGATES}


@dataclass(frozen=True)
class Ceilings:
    seconds: dict[str, float]  # by the run's step names
    aggregates: dict[str, pa.Table]  # DuckDB's rows
    copied: dict[str, int]  # rows COPYed, by table


def _timed_pass(spark: SparkSession, root: str, url: str, day: dt.date, scratch: Path) -> Ceilings:
    dimensions, facts = list(DIMENSIONS), list(FACTS)
    computed: dict[str, pa.Table] = {}
    copied: dict[str, int] = {}
    snapshot_rows, batch_rows = latest_rows(root, dimensions, day), latest_rows(root, facts, day)
    seconds = {
        "parquet_snapshots": timed(lambda: reader_alone(spark, root, dimensions, day, scratch / "snapshots")),
        "migrated_snapshots": timed(lambda: iceberg_append(spark, root, dimensions, day, scratch / "snapshots")),
        "postgres_snapshots": timed(lambda: binary_copy(url, snapshot_rows, copied)),
        "parquet_batches": timed(lambda: reader_alone(spark, root, facts, day, scratch / "batches")),
        "migrated_batches": timed(lambda: iceberg_append(spark, root, facts, day, scratch / "batches")),
        "postgres_batches": timed(lambda: binary_copy(url, batch_rows, copied)),
        "aggregates": timed(lambda: computed.update(duckdb_aggregates(root, day))),
    }
    aggregates = [(AGGREGATES[name], lambda name=name: computed[name].to_batches()) for name in AGGREGATES]
    seconds["postgres_aggregates"] = timed(lambda: binary_copy(url, aggregates, copied))
    return Ceilings(seconds, computed, copied)


def measure(spark: SparkSession, root: str, url: str, day: dt.date, scratch: Path) -> Ceilings:
    """Each stage's ceiling, timed one after another in this process: the second of two passes, so that no
    ceiling pays for loading the JVM's classes of its kind of work for the first time."""
    shutil.rmtree(scratch, ignore_errors=True)
    _timed_pass(spark, root, url, day, scratch / "warm-up")
    found = _timed_pass(spark, root, url, day, scratch / "timed")
    shutil.rmtree(scratch, ignore_errors=True)
    return found
