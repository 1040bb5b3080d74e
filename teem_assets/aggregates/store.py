"""Aggregate partitions on storage: `<partition_column>=<value>` folders, each replaced whole."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.dataset as ds
from pyspark.sql import DataFrame

from teem_assets.aggregates.inputs import KEY
from teem_assets.aggregates.outputs import Aggregate
from teem_assets.migration import parquet_rows
from teem_assets.publish import discard_dir, staging_dir


def partition_dir(target: str, aggregate: Aggregate, value: dt.date) -> str:
    return os.path.join(target, f"{aggregate.partition_column}={value.isoformat()}")


def write_partitions(
    result: DataFrame,
    aggregate: Aggregate,
    target: str,
    values: list[dt.date],
    publish: Callable[[str, str], None],
    remove: Callable[[str], None],
) -> int:
    """Replace the partitions of `values` with the result's rows (which must lie in them); a partition left
    without rows is removed. Returns the rows now in those partitions."""
    column = aggregate.partition_column
    staging = staging_dir(os.path.join(target, f"run-{uuid.uuid4().hex[:8]}"))
    try:
        (
            result.repartition(column)
            .sortWithinPartitions(*KEY, *[c for c in aggregate.column_names if c not in KEY])
            .write.mode("overwrite")
            .partitionBy(column)
            .parquet(staging)
        )
        for value in values:
            written = partition_dir(staging, aggregate, value)
            if os.path.isdir(written):
                publish(written, partition_dir(target, aggregate, value))
            else:
                remove(partition_dir(target, aggregate, value))
    finally:
        discard_dir(staging)
    return sum(parquet_rows(partition_dir(target, aggregate, v)) for v in values)


def partition_rows(target: str, aggregate: Aggregate, values: list[dt.date]) -> Iterator[pa.RecordBatch]:
    """The rows of the partitions of `values`, with the partition column restored, in the output's order."""
    files = [
        os.path.join(folder, name)
        for folder in (partition_dir(target, aggregate, v) for v in values)
        if os.path.isdir(folder)
        for name in sorted(os.listdir(folder))
        if name.endswith(".parquet")
    ]
    if not files:
        return iter(())
    dataset = ds.dataset(
        files,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(aggregate.partition_column, pa.date32())]), flavor="hive"),
        partition_base_dir=target,
    )
    return dataset.to_batches(columns=aggregate.column_names, batch_size=65536)
