"""Redshift type names, column specs, and the catalogue against handover/TABLES.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SAMPLE_SPEC

from teem_assets.catalogue import TABLES, LoadMode
from teem_assets.redshift_types import Kind, TypeSpecError, parse_columns_spec, parse_type
from teem_assets.sample.generate import snapshot_rows

TABLES_MD = Path(__file__).resolve().parents[2] / "shared" / "handover" / "TABLES.md"
# Athena/Hive types of TABLES.md and the Redshift kinds they come from.
HIVE_KINDS = {
    "int": {Kind.INTEGER},
    "bigint": {Kind.BIGINT},
    "smallint": {Kind.SMALLINT},
    "string": {Kind.VARCHAR},
    "char": {Kind.CHAR, Kind.VARCHAR},
    "boolean": {Kind.BOOLEAN},
    "float": {Kind.REAL},
    "timestamp": {Kind.TIMESTAMP},
    "date": {Kind.DATE},
}


def _tables_md() -> dict[str, list[tuple[str, str, str]]]:
    tables: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in TABLES_MD.read_text().splitlines():
        heading = re.match(r"## (\w+) \(", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        row = re.match(r"\| \d+ \| (\w+) \| (\w+) \| (.*?) \|", line)
        if row and current is not None:
            current.append(row.groups())
    return tables


def test_catalogue_matches_tables_md_column_for_column():
    documented = _tables_md()
    assert set(documented) == set(TABLES)
    for name, columns in documented.items():
        table = TABLES[name]
        assert [c.name for c in table.columns] == [c for c, _, _ in columns], name
        for column, (_, hive, _) in zip(table.columns, columns):
            assert column.type.kind in HIVE_KINDS[hive], (name, column)
        assert [c for c, _, note in columns if "primary key" in note] == list(table.primary_key)
        assert table.created_at.endswith("_created_at") and table.updated_at.endswith("_updated_at")
        assert table.load_mode is (LoadMode.SNAPSHOT if name.startswith("dim_") else LoadMode.INCREMENTAL)


def test_dim_date_display_columns_hold_their_values():
    table = TABLES["dim_date"]
    for row in snapshot_rows(SAMPLE_SPEC, "dim_date"):
        for column, value in zip(table.columns, row):
            if column.type.is_text and value is not None:
                assert len(value) <= column.type.length, (column.name, value)


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("int", "integer"),
        ("INT4", "integer"),
        ("bigint", "bigint"),
        ("decimal(12,2)", "decimal(12,2)"),
        ("numeric( 5 )", "decimal(5,0)"),
        ("decimal", "decimal(18,0)"),
        ("double precision", "double precision"),
        ("float4", "real"),
        ("bool", "boolean"),
        ("char(10)", "char(10)"),
        ("varchar", "varchar(256)"),
        ("character varying(64)", "varchar(64)"),
        ("timestamp", "timestamp"),
        ("timestamp with time zone", "timestamptz"),
    ],
)
def test_type_names(text: str, sql: str):
    assert parse_type(text).sql == sql


@pytest.mark.parametrize("text", ["money", "int(3)", "decimal(40,2)", "decimal(5,6)", "varchar(1,2)"])
def test_bad_type_names(text: str):
    with pytest.raises(TypeSpecError):
        parse_type(text)


def test_columns_spec_keeps_commas_inside_parentheses():
    columns = parse_columns_spec("id:bigint,name:varchar(256),amount:decimal(12,2),at:timestamp")
    assert [(n, t.sql) for n, t in columns] == [
        ("id", "bigint"),
        ("name", "varchar(256)"),
        ("amount", "decimal(12,2)"),
        ("at", "timestamp"),
    ]
    with pytest.raises(TypeSpecError, match="NAME:TYPE"):
        parse_columns_spec("id")
    with pytest.raises(TypeSpecError, match="duplicate"):
        parse_columns_spec("a:int,a:int")
