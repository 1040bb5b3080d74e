"""Aggregate tables in Iceberg, partitioned by their partition column: the recomputed values replaced in one
commit, which also records the snapshots they were computed from: the dimensions' (a token) and the fact
tables' (where the next computation's changelog starts)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from teem_assets.aggregates.outputs import Aggregate
from teem_assets.iceberg import create_table, retry_conflicts, snapshot_summary
from teem_assets.redshift_types import arrow_schema
from teem_assets.spark_types import spark_schema

DIMENSIONS_TOKEN = "teem.dimensions-token"
FACTS_READ = "teem.fact-snapshots"


def ensure_aggregate_table(spark: SparkSession, aggregate: Aggregate, identifier: str) -> None:
    create_table(spark, identifier, spark_schema(aggregate.typed_columns), aggregate.partition_column)


def last_dimensions_token(spark: SparkSession, identifier: str) -> str | None:
    """The dimensions token the table's current snapshot was computed with (None: never computed)."""
    return snapshot_summary(spark, identifier).get(DIMENSIONS_TOKEN)


def last_fact_snapshots(spark: SparkSession, identifier: str) -> dict[str, int | None] | None:
    """The fact tables' snapshots the table's current snapshot was computed from (None: not recorded)."""
    recorded = snapshot_summary(spark, identifier).get(FACTS_READ)
    return json.loads(recorded) if recorded else None


def write_partitions(
    result: DataFrame,
    aggregate: Aggregate,
    identifier: str,
    values: list[dt.date],
    dimensions_token: str,
    fact_snapshots: Mapping[str, int | None],
    log: Callable[[str], None] | None = None,
) -> int:
    """Replace the rows of `values` (the result's rows must lie in them) in one commit; a value left without
    rows is emptied. Returns the rows now in those values."""
    column = F.col(aggregate.partition_column)
    condition = column.isin(values) if values else F.lit(False)
    spark = result.sparkSession
    ensure_aggregate_table(spark, aggregate, identifier)
    rows = result.select(*aggregate.column_names)
    retry_conflicts(
        lambda: (
            rows.writeTo(identifier)
            .option(f"snapshot-property.{DIMENSIONS_TOKEN}", dimensions_token)
            .option(f"snapshot-property.{FACTS_READ}", json.dumps(dict(fact_snapshots), sort_keys=True))
            .overwrite(condition)
        ),
        log=log,
    )
    return spark.table(identifier).where(condition).count() if values else 0


def stored_values(spark: SparkSession, aggregate: Aggregate, identifier: str) -> list[dt.date]:
    """The partition values the table holds rows of (from its metadata), none when it does not exist."""
    if not spark.catalog.tableExists(identifier):
        return []
    rows = spark.sql(f"SELECT partition.`{aggregate.partition_column}` FROM {identifier}.partitions").collect()
    return [row[0] for row in rows]


def partition_rows(iceberg_table, aggregate: Aggregate, values: list[dt.date]) -> Iterator[pa.RecordBatch]:  # noqa: ANN001
    """The rows of the partitions of `values`, through pyiceberg (`iceberg_table` is a pyiceberg Table)."""
    from pyiceberg.expressions import In

    if not values:
        return iter(())
    scan = iceberg_table.scan(
        row_filter=In(aggregate.partition_column, {v.isoformat() for v in values}),
        selected_fields=tuple(aggregate.column_names),
    )
    schema = arrow_schema(aggregate.typed_columns)
    return (batch.select(schema.names).cast(schema) for batch in scan.to_arrow_batch_reader())
