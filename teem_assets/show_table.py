"""`teem table NAME`: a table's rows from wherever it is stored (the Parquet layer, the Iceberg catalog, or
PostgreSQL), so a user can look at a table without Athena."""

from __future__ import annotations

import pyarrow as pa
from psycopg2 import sql

from resources.postgres import PostgresResource
from resources.storage import MissingTable, StorageResource
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES, Columns
from teem_assets.migration import CREATED_DATE
from teem_assets.redshift_types import arrow_schema
from teem_assets.unload.location import parquet_dataset

LAYERS = ("parquet", "migrated", "aggregates", "postgres")


def default_layer(name: str) -> str:
    return "aggregates" if name in AGGREGATES else "migrated"


def _columns(name: str) -> Columns:
    if name in TABLES:
        return TABLES[name]
    if name in AGGREGATES:
        return AGGREGATES[name]
    raise MissingTable(f"no table named {name}: one of {', '.join([*TABLES, *AGGREGATES])}")


def _sort_keys(name: str) -> list[str]:
    if name in TABLES:
        return list(TABLES[name].primary_key)
    return list(AGGREGATES[name].column_names[:6])


def _parquet(storage: StorageResource, name: str) -> pa.Table:
    table = TABLES[name]
    batches = ["snapshot"] if table.is_dimension else storage.data.converted_dates(name)
    files = [uri for b in batches if (found := storage.data.converted(name, b)) for uri in found.uris]
    if not files:
        raise MissingTable(f"{storage.data.parquet_table(name)} holds no converted unload")
    return parquet_dataset(files).to_table()


def _postgres(postgres: PostgresResource, name: str, columns: Columns) -> pa.Table:
    connection = postgres.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (f'"{postgres.schema_name}"."{name}"',))
            if cursor.fetchone()[0] is None:
                raise MissingTable(f"PostgreSQL at {postgres.server()} has no table {postgres.schema_name}.{name} yet")
            cursor.execute(
                sql.SQL("SELECT {} FROM {}.{}").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns.column_names),
                    sql.Identifier(postgres.schema_name),
                    sql.Identifier(name),
                )
            )
            rows = cursor.fetchall()
    finally:
        connection.close()
    schema = arrow_schema(columns.typed_columns)
    return pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows], schema=schema)


def table_rows(storage: StorageResource, postgres: PostgresResource | None, name: str, layer: str) -> pa.Table:
    """Every current row of table `name` in `layer`, sorted by its key."""
    columns = _columns(name)
    if name in AGGREGATES and layer in ("parquet", "migrated"):
        raise MissingTable(f"{name} is an aggregate: its layers are aggregates and postgres, not {layer}")
    if name in TABLES and layer == "aggregates":
        raise MissingTable(f"{name} is a migrated table: its layers are parquet, migrated and postgres")
    if layer == "parquet":
        rows = _parquet(storage, name)
    elif layer == "postgres":
        rows = _postgres(postgres, name, columns)
    else:
        database = storage.aggregates_database if name in AGGREGATES else storage.migrated_database
        rows = storage.data.iceberg_table(database, name).scan().to_arrow()
        if name in TABLES:
            rows = rows.select([*columns.column_names, CREATED_DATE])
    return rows.sort_by([(k, "ascending") for k in _sort_keys(name)])
