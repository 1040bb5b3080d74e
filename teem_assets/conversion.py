"""The convert stage's entry point: unloads to the Parquet layer, each committed through its batch pointer
(`teem_assets.converted`) with the statistics the checks read later."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow.compute as pc
from pyspark.sql import SparkSession

from teem_assets import converted
from teem_assets.catalogue import Table
from teem_assets.unload.location import REQUEST_THREADS, join, parquet_dataset
from teem_assets.unload.rules import RuleSet
from teem_assets.unload.spark_reader import ConvertedUnload, UnloadConversion, convert_unloads


@dataclass(frozen=True)
class ConversionRequest:
    """One unload of one table: where it is read from, and the Parquet and quarantine folders of its batch."""

    table: Table
    batch: str  # a batch date, or "snapshot"
    raw: str
    parquet: str
    quarantine: str


@dataclass(frozen=True)
class Conversion:
    request: ConversionRequest
    result: ConvertedUnload
    batch: converted.ConvertedBatch | None  # None: it could not be read (`result.errors`), nothing committed


def distinct_values(uris: list[str], column: str) -> list[int]:
    """The distinct non-null values of one column of Parquet files."""
    if not uris:
        return []
    values = parquet_dataset(uris).to_table(columns=[column]).column(column)
    return sorted(pc.unique(values.drop_null()).to_pylist())


def convert(spark: SparkSession, requests: list[ConversionRequest]) -> list[Conversion]:
    """Convert every unload in one Spark job into a new attempt folder each, then point each batch that was
    read whole at it; an unload that could not be read keeps its previous conversion, if any."""
    attempts = [converted.new_attempt() for _ in requests]
    today = dt.datetime.now(dt.UTC).date()
    conversions = [
        UnloadConversion(
            r.raw,
            r.table.typed_columns,
            join(r.parquet, a),
            join(r.quarantine, a),
            rules=RuleSet.of(r.table, r.batch, today),
        )
        for r, a in zip(requests, attempts)
    ]
    results = convert_unloads(spark, conversions)
    with ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="unload-commit") as pool:
        return list(pool.map(_committed, requests, attempts, results))


def _committed(request: ConversionRequest, attempt: str, result: ConvertedUnload) -> Conversion:
    """The batch pointed at its new attempt, with its statistics, when the unload was read whole."""
    if result.errors:
        return Conversion(request, result, None)
    files = converted.files_of(request.parquet, attempt)
    column = request.table.company_column
    batch = converted.ConvertedBatch(
        folder=request.parquet,
        attempt=attempt,
        files=files,
        rows=result.rows,
        quarantined=result.malformed,
        quarantine=join(request.quarantine, attempt),
        companies=distinct_values([join(request.parquet, attempt, f) for f in files], column) if column else [],
        blocked=sorted(o.rule.name for o in result.rule_outcomes if o.rule.blocks and o.broken),
    )
    converted.commit(batch)
    return Conversion(request, result, batch)
