"""Aggregate tables in Iceberg, partitioned by their partition column: the recomputed values replaced in one
commit, which also records the snapshots they were computed from: the dimensions' (a token) and the fact
tables' (where the next computation's changelog starts)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.table.snapshots import Operation
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from teem_assets.aggregates.outputs import Aggregate
from teem_assets.iceberg import create_table, retry_conflicts
from teem_assets.iceberg_scan import scan_batches
from teem_assets.redshift_types import arrow_schema
from teem_assets.spark_types import spark_schema
from teem_assets.table_state import summary_values

DIMENSIONS_TOKEN = "teem.dimensions-token"
FACTS_READ = "teem.fact-snapshots"
VALUES_REPLACED = "teem.values-replaced"  # the partition values a commit replaced: what an export must copy


def ensure_aggregate_table(spark: SparkSession, aggregate: Aggregate, identifier: str) -> None:
    create_table(spark, identifier, spark_schema(aggregate.typed_columns), aggregate.partition_column)


@dataclass(frozen=True)
class LastComputation:
    """What the table's current snapshot was computed from, as its commit recorded it (None: not recorded)."""

    dimensions_token: str | None
    fact_snapshots: dict[str, int | None] | None


def last_computation(spark: SparkSession, identifier: str) -> LastComputation | None:
    """Read from the one current snapshot (None: the table has none, never computed)."""
    recorded = summary_values(spark, identifier, [DIMENSIONS_TOKEN, FACTS_READ], skip_replace=True)
    if recorded is None:
        return None
    facts = recorded.get(FACTS_READ)
    return LastComputation(recorded.get(DIMENSIONS_TOKEN), json.loads(facts) if facts else None)


def write_partitions(
    result: DataFrame,
    aggregate: Aggregate,
    target: str,
    values: list[dt.date],
    dimensions_token: str,
    fact_snapshots: Mapping[str, int | None],
    log: Callable[[str], None] | None = None,
) -> int:
    """Replace the rows of `values` (the result's rows must lie in them) in one commit to `target` (the table,
    or a branch of it: `<table>.branch_<name>`); a value left without rows is emptied. Returns the rows now in
    those values."""
    column = F.col(aggregate.partition_column)
    condition = column.isin(values) if values else F.lit(False)
    spark = result.sparkSession
    rows = result.select(*aggregate.column_names)
    retry_conflicts(
        lambda: (
            rows.writeTo(target)
            .option(f"snapshot-property.{DIMENSIONS_TOKEN}", dimensions_token)
            .option(f"snapshot-property.{FACTS_READ}", json.dumps(dict(fact_snapshots), sort_keys=True))
            .option(f"snapshot-property.{VALUES_REPLACED}", json.dumps([v.isoformat() for v in values]))
            .overwrite(condition)
        ),
        log=log,
    )
    return spark.table(target).where(condition).count() if values else 0


def stored_values(spark: SparkSession, aggregate: Aggregate, identifier: str) -> list[dt.date]:
    """The partition values the table holds rows of (from its metadata), none when it does not exist."""
    if not spark.catalog.tableExists(identifier):
        return []
    rows = spark.sql(f"SELECT partition.`{aggregate.partition_column}` FROM {identifier}.partitions").collect()
    return [row[0] for row in rows]


def partition_rows(
    iceberg_table,  # noqa: ANN001 - a pyiceberg Table
    aggregate: Aggregate,
    values: list[dt.date] | None,
    snapshot_id: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of the partitions of `values` (None: every row), through pyiceberg, as of `snapshot_id` (default:
    the current snapshot)."""
    from pyiceberg.expressions import AlwaysTrue, In

    if values is not None and not values:
        return iter(())
    row_filter = AlwaysTrue() if values is None else In(aggregate.partition_column, {v.isoformat() for v in values})
    scan = iceberg_table.scan(
        row_filter=row_filter, selected_fields=tuple(aggregate.column_names), snapshot_id=snapshot_id
    )
    schema = arrow_schema(aggregate.typed_columns)
    return (batch.select(schema.names).cast(schema) for batch in scan_batches(scan))


def values_replaced_since(iceberg_table, since: int | None, until: int) -> list[dt.date] | None:  # noqa: ANN001
    """The partition values the commits after snapshot `since` up to `until` replaced, from their summaries;
    None when that cannot be told (`since` is not an ancestor of `until`, expired, or a commit did not record
    them): then every value must be taken as replaced."""
    values: set[dt.date] = set()
    snapshot = iceberg_table.snapshot_by_id(until)
    while snapshot is not None and snapshot.snapshot_id != since:
        summary = snapshot.summary
        recorded = (summary.additional_properties if summary else {}).get(VALUES_REPLACED)
        if summary is not None and summary.operation == Operation.REPLACE:
            recorded = "[]"  # a compaction: files rewritten, no value changed
        if recorded is None:
            return None
        values |= {dt.date.fromisoformat(v) for v in json.loads(recorded)}
        parent = snapshot.parent_snapshot_id
        snapshot = iceberg_table.snapshot_by_id(parent) if parent is not None else None
    return sorted(values) if snapshot is not None else None
