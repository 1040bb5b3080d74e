"""Reading what a run left, through pyiceberg and the batch pointers: a reader other than Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq

from teem_assets import converted, layout
from teem_assets.aggregates.outputs import AGGREGATES, Aggregate
from teem_assets.catalogue import TABLES
from teem_assets.iceberg import CatalogSettings, python_catalog
from teem_assets.layout import default_databases


def settings(root: Path | str, endpoint: str | None = None) -> CatalogSettings:
    return CatalogSettings(str(root), aws_endpoint_url=endpoint, aws_region="us-east-1" if endpoint else None)


def iceberg(root: Path | str, layer: str, name: str, endpoint: str | None = None):
    """Table `name` of `layer` (migrated or aggregates), in the root's database of that layer."""
    databases = dict(zip(("migrated", "aggregates"), default_databases(str(root)), strict=True))
    return python_catalog(settings(root, endpoint)).load_table((databases[layer], name))


def iceberg_rows(root: Path | str, layer: str, name: str, endpoint: str | None = None) -> pa.Table:
    return iceberg(root, layer, name, endpoint).scan().to_arrow()


def sorted_rows(table: pa.Table, columns: list[str] | None = None) -> list[tuple]:
    table = table.select(columns) if columns else table
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def aggregate_values(root: Path | str, aggregate: Aggregate) -> list[dt.date]:
    rows = iceberg_rows(root, "aggregates", aggregate.name)
    return sorted(set(rows.column(aggregate.partition_column).to_pylist()))


def batch_table(root: Path | str, table: str, day: str) -> pa.Table:
    """One converted batch, read from the files its pointer names."""
    found = converted.read(layout.parquet_batch(str(root), table, day))
    assert found is not None, f"{table} {day} was never converted"
    return pa.concat_tables([pq.read_table(uri) for uri in found.uris])


ICEBERG = [("migrated", name) for name in TABLES] + [("aggregates", name) for name in AGGREGATES]


def pipeline_state(root: Path, url: str, schema: str) -> dict[tuple[str, str], list[tuple]]:
    """Every table the pipeline writes, whole: the Iceberg tables and their PostgreSQL exports."""
    found = {key: sorted_rows(iceberg_rows(root, *key)) for key in ICEBERG}
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        for name in [*TABLES, *AGGREGATES]:
            cursor.execute(f'SELECT * FROM "{schema}"."{name}"')
            found[("postgres", name)] = sorted(cursor.fetchall(), key=repr)
    connection.close()
    return found
