"""Spark types of the catalogue's Redshift types: timestamps without zone are TIMESTAMP_NTZ."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import types as T

from teem_assets.redshift_types import Kind, RedshiftType

_SPARK = {
    Kind.SMALLINT: lambda t: T.ShortType(),
    Kind.INTEGER: lambda t: T.IntegerType(),
    Kind.BIGINT: lambda t: T.LongType(),
    Kind.DECIMAL: lambda t: T.DecimalType(t.precision, t.scale),
    Kind.REAL: lambda t: T.FloatType(),
    Kind.DOUBLE: lambda t: T.DoubleType(),
    Kind.BOOLEAN: lambda t: T.BooleanType(),
    Kind.CHAR: lambda t: T.StringType(),
    Kind.VARCHAR: lambda t: T.StringType(),
    Kind.DATE: lambda t: T.DateType(),
    Kind.TIMESTAMP: lambda t: T.TimestampNTZType(),
    Kind.TIMESTAMPTZ: lambda t: T.TimestampType(),
}


def spark_type(rtype: RedshiftType) -> T.DataType:
    return _SPARK[rtype.kind](rtype)


def spark_schema(columns: Sequence[tuple[str, RedshiftType]]) -> T.StructType:
    return T.StructType([T.StructField(name, spark_type(rtype), nullable=True) for name, rtype in columns])
