"""The UNLOAD reader in Spark: Spark spreads the parts over its tasks; each task decodes its part with
the compiled scanner and writes the Parquet itself, so no row passes through the JVM until it is read back.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from teem_assets.spark_types import spark_schema
from teem_assets.unload.convert import PARQUET_OPTIONS, PartResult, convert_part
from teem_assets.unload.decode import Columns, DecodeOptions, Malformed, arrow_schema
from teem_assets.unload.location import join, resolve
from teem_assets.unload.parts import Part, UnloadParts, find_parts

EMPTY_OUTPUT = "empty.parquet"


@dataclass
class UnloadRead:
    """An unload converted to Parquet: the rows as a DataFrame, and what became of every record."""

    dataframe: DataFrame
    unload: UnloadParts
    results: list[PartResult]
    output: str
    quarantine: str
    malformed_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(r.records for r in self.results)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def malformed(self) -> int:
        return sum(r.malformed for r in self.results)

    @property
    def malformed_sample(self) -> list[Malformed]:
        return [m for r in self.results for m in r.malformed_sample]


def _convert_task(
    item: Part, columns: Columns, out_dir: str, quarantine_dir: str, options: DecodeOptions
) -> PartResult:
    return convert_part(item, columns, out_dir, quarantine_dir, options)


def _clear(location: str) -> None:
    fs, path = resolve(location)
    fs.create_dir(path, recursive=True)
    fs.delete_dir_contents(path, missing_dir_ok=True)


def convert_unload(
    spark: SparkSession,
    unload: UnloadParts,
    columns: Columns,
    out_dir: str,
    quarantine_dir: str,
    options: DecodeOptions = DecodeOptions(),
) -> list[PartResult]:
    """Convert every part in its own task, largest first; `out_dir` and `quarantine_dir` are replaced."""
    _clear(out_dir)
    _clear(quarantine_dir)
    parts = sorted(unload.parts, key=lambda p: p.size, reverse=True)
    if not parts:
        fs, path = resolve(join(out_dir, EMPTY_OUTPUT))
        with fs.open_output_stream(path) as sink:
            pq.write_table(arrow_schema(columns).empty_table(), sink, **PARQUET_OPTIONS)
        return []
    task = functools.partial(
        _convert_task, columns=list(columns), out_dir=out_dir, quarantine_dir=quarantine_dir, options=options
    )
    results = spark.sparkContext.parallelize(parts, len(parts)).map(task).collect()
    return sorted(results, key=lambda r: r.part)


def read_unload(
    spark: SparkSession,
    location: str,
    columns: Columns,
    out_dir: str,
    quarantine_dir: str,
    options: DecodeOptions = DecodeOptions(),
) -> UnloadRead:
    """Read the unload at `location` (a part, a folder of parts, or a manifest) into typed Parquet."""
    unload = find_parts(location)
    results = convert_unload(spark, unload, columns, out_dir, quarantine_dir, options)
    reasons: Counter[str] = Counter()
    for result in results:
        reasons.update(result.malformed_by_reason)
    dataframe = spark.read.schema(spark_schema(columns)).parquet(out_dir)
    return UnloadRead(
        dataframe=dataframe,
        unload=unload,
        results=results,
        output=out_dir,
        quarantine=quarantine_dir,
        malformed_by_reason=dict(reasons),
    )
