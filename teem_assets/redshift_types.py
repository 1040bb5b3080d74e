"""Redshift column types: parsing their names and mapping them to Arrow and Spark types."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa


class Kind(Enum):
    SMALLINT = "smallint"
    INTEGER = "integer"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    REAL = "real"
    DOUBLE = "double precision"
    BOOLEAN = "boolean"
    CHAR = "char"
    VARCHAR = "varchar"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"


_ALIASES: dict[str, Kind] = {
    "smallint": Kind.SMALLINT,
    "int2": Kind.SMALLINT,
    "int": Kind.INTEGER,
    "integer": Kind.INTEGER,
    "int4": Kind.INTEGER,
    "bigint": Kind.BIGINT,
    "int8": Kind.BIGINT,
    "decimal": Kind.DECIMAL,
    "numeric": Kind.DECIMAL,
    "real": Kind.REAL,
    "float4": Kind.REAL,
    "double precision": Kind.DOUBLE,
    "float8": Kind.DOUBLE,
    "float": Kind.DOUBLE,
    "boolean": Kind.BOOLEAN,
    "bool": Kind.BOOLEAN,
    "char": Kind.CHAR,
    "character": Kind.CHAR,
    "nchar": Kind.CHAR,
    "bpchar": Kind.CHAR,
    "varchar": Kind.VARCHAR,
    "character varying": Kind.VARCHAR,
    "nvarchar": Kind.VARCHAR,
    "text": Kind.VARCHAR,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "timestamp without time zone": Kind.TIMESTAMP,
    "timestamptz": Kind.TIMESTAMPTZ,
    "timestamp with time zone": Kind.TIMESTAMPTZ,
}

_TYPE_RE = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")

REDSHIFT_MAX_DECIMAL_PRECISION = 38
REDSHIFT_DEFAULT_DECIMAL = (18, 0)
REDSHIFT_DEFAULT_VARCHAR_LENGTH = 256
# The earliest instant every reader downstream holds: Redshift keeps dates back to 4713 BC, but Python's datetime,
# Spark's documented range and PostgreSQL's text form of a year (no year 0000) begin here.
EARLIEST = dt.datetime(1, 1, 1)


@dataclass(frozen=True)
class RedshiftType:
    """One Redshift column type; `length` for char/varchar, `precision`/`scale` for decimal."""

    kind: Kind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @property
    def is_text(self) -> bool:
        return self.kind in (Kind.CHAR, Kind.VARCHAR)

    @property
    def is_temporal(self) -> bool:
        return self.kind in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ)

    @property
    def sql(self) -> str:
        if self.kind is Kind.DECIMAL:
            return f"decimal({self.precision},{self.scale})"
        if self.is_text:
            return f"{self.kind.value}({self.length})"
        return self.kind.value

    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind](self)

    def __str__(self) -> str:
        return self.sql


_ARROW_TYPES = {
    Kind.SMALLINT: lambda t: pa.int16(),
    Kind.INTEGER: lambda t: pa.int32(),
    Kind.BIGINT: lambda t: pa.int64(),
    Kind.DECIMAL: lambda t: pa.decimal128(t.precision, t.scale),
    Kind.REAL: lambda t: pa.float32(),
    Kind.DOUBLE: lambda t: pa.float64(),
    Kind.BOOLEAN: lambda t: pa.bool_(),
    Kind.CHAR: lambda t: pa.string(),
    Kind.VARCHAR: lambda t: pa.string(),
    Kind.DATE: lambda t: pa.date32(),
    Kind.TIMESTAMP: lambda t: pa.timestamp("us"),
    Kind.TIMESTAMPTZ: lambda t: pa.timestamp("us", tz="UTC"),
}


class TypeSpecError(ValueError):
    """A type name or column spec that is not a Redshift type."""


def parse_type(text: str) -> RedshiftType:
    """Parse a Redshift type name such as `varchar(256)`, `decimal(12,2)` or `double precision`."""
    match = _TYPE_RE.match(text.lower())
    if not match or match.group(1) not in _ALIASES:
        raise TypeSpecError(f"unknown Redshift type {text!r}")
    kind = _ALIASES[match.group(1)]
    first = int(match.group(2)) if match.group(2) else None
    second = int(match.group(3)) if match.group(3) else None
    if kind is Kind.DECIMAL:
        precision, scale = (first, second or 0) if first is not None else REDSHIFT_DEFAULT_DECIMAL
        if not 1 <= precision <= REDSHIFT_MAX_DECIMAL_PRECISION or scale > precision:
            raise TypeSpecError(f"invalid decimal precision/scale in {text!r}")
        return RedshiftType(kind, precision=precision, scale=scale)
    if second is not None or (first is not None and kind not in (Kind.CHAR, Kind.VARCHAR)):
        raise TypeSpecError(f"type {text!r} takes no such parameters")
    if kind is Kind.CHAR:
        return RedshiftType(kind, length=first or 1)
    if kind is Kind.VARCHAR:
        return RedshiftType(kind, length=first or REDSHIFT_DEFAULT_VARCHAR_LENGTH)
    return RedshiftType(kind)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses: `a:decimal(12,2),b:int` -> two items."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_columns_spec(spec: str) -> list[tuple[str, RedshiftType]]:
    """Parse `id:bigint,name:varchar(256),amount:decimal(12,2)` into (name, type) pairs."""
    columns: list[tuple[str, RedshiftType]] = []
    for item in split_top_level(spec):
        name, sep, type_name = item.partition(":")
        if not sep or not name.strip():
            raise TypeSpecError(f"column spec item {item!r} is not NAME:TYPE")
        columns.append((name.strip(), parse_type(type_name)))
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise TypeSpecError(f"duplicate column names in {spec!r}")
    return columns


def arrow_schema(columns: Sequence[tuple[str, RedshiftType]]) -> pa.Schema:
    """The Arrow schema of (name, type) columns."""
    return pa.schema([pa.field(name, rtype.arrow_type()) for name, rtype in columns])
