"""PostgreSQL tables from the catalogue: real types, primary keys, quoted identifiers, additive evolution."""

from __future__ import annotations

import re

from psycopg2 import sql

from teem_assets.catalogue import Columns, Table
from teem_assets.redshift_types import Kind, RedshiftType


class SchemaConflict(Exception):
    """A column of the database table has another type than the catalogue says: never cast silently."""


def pg_type(rtype: RedshiftType) -> str:
    """The PostgreSQL type of a Redshift type. char(n) becomes varchar(n): PostgreSQL pads char(n) with
    blanks, which Redshift does not write (spec: pad blanks not written), so values would change."""
    kind = rtype.kind
    if kind is Kind.DECIMAL:
        return f"numeric({rtype.precision},{rtype.scale})"
    if rtype.is_text:
        return f"character varying({rtype.length})"
    return {
        Kind.SMALLINT: "smallint",
        Kind.INTEGER: "integer",
        Kind.BIGINT: "bigint",
        Kind.REAL: "real",
        Kind.DOUBLE: "double precision",
        Kind.BOOLEAN: "boolean",
        Kind.DATE: "date",
        Kind.TIMESTAMP: "timestamp without time zone",
        Kind.TIMESTAMPTZ: "timestamp with time zone",
    }[kind]


_INTEGERS = ("smallint", "integer", "bigint")
_SIZED = re.compile(r"^(character varying|numeric)\((\d+)(?:,(\d+))?\)$")


def widens(found: str, wanted: str) -> bool:
    """Whether every value of PostgreSQL type `found` is, unchanged, one of `wanted`: a longer varchar, a wider
    integer, a numeric's precision at the same scale, real to double precision (what the Iceberg tables allow)."""
    if found in _INTEGERS and wanted in _INTEGERS:
        return _INTEGERS.index(wanted) >= _INTEGERS.index(found)
    if (found, wanted) == ("real", "double precision"):
        return True
    old, new = _SIZED.match(found), _SIZED.match(wanted)
    if not (old and new and old[1] == new[1]):
        return False
    return int(new[2]) >= int(old[2]) and old[3] == new[3]


def qualified(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def create_table_sql(table: Columns, schema: str, name: str | None = None) -> sql.Composed:
    """A catalogue table with its primary key; an aggregate (whose key columns may be NULL) without one."""
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(pg_type(c.type))) for c in table.columns]
    if isinstance(table, Table):
        keys = sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
        columns.append(sql.SQL("PRIMARY KEY ({})").format(keys))
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        qualified(schema, name or table.name), sql.SQL(", ").join(columns)
    )


def _existing_columns(cursor, schema: str, name: str) -> dict[str, str]:  # noqa: ANN001 - psycopg2 cursor
    cursor.execute(
        "SELECT column_name, format_type(a.atttypid, a.atttypmod) FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "AND a.attname = c.column_name WHERE c.table_schema = %s AND c.table_name = %s",
        (schema, name),
    )
    return dict(cursor.fetchall())


def missing_under_lock(cursor, schema: str, name: str) -> bool:  # noqa: ANN001 - psycopg2 cursor
    """Whether `schema.name` is missing; when it is, this transaction first takes the schema's creation lock
    (till it ends), so that loads creating tables at once, from any instance, create each once: two concurrent
    `CREATE … IF NOT EXISTS` of one name can both fail PostgreSQL's catalog uniqueness."""
    cursor.execute("SELECT to_regclass(%s) IS NULL", (qualified(schema, name).as_string(cursor),))
    if not cursor.fetchone()[0]:
        return False
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"teem: create in {schema}",))
    return True


def ensure_table(cursor, table: Columns, schema: str) -> list[str]:  # noqa: ANN001 - psycopg2 cursor
    """Create the schema and table if missing; add catalogue columns the table lacks and widen those whose
    catalogue type widens theirs (`widens`); return the columns added or widened. Run inside the load's
    transaction: a column whose type differs otherwise stops with SchemaConflict, and nothing is changed."""
    if missing_under_lock(cursor, schema, table.name):
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cursor.execute(create_table_sql(table, schema))
    existing = _existing_columns(cursor, schema, table.name)
    added = []
    for column in table.columns:
        wanted = pg_type(column.type)
        found = existing.get(column.name)
        if found is None:
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    qualified(schema, table.name), sql.Identifier(column.name), sql.SQL(wanted)
                )
            )
            added.append(column.name)
        elif found != wanted and widens(found, wanted):
            cursor.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                    qualified(schema, table.name), sql.Identifier(column.name), sql.SQL(wanted)
                )
            )
            added.append(column.name)
        elif found != wanted:
            raise SchemaConflict(
                f"{schema}.{table.name}.{column.name} is {found} in PostgreSQL but {wanted} in the catalogue; "
                "change one of them by hand (no data is cast silently)"
            )
    return added
