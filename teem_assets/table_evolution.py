"""A catalogue change reaching an Iceberg table that exists: a column the catalogue added is added to the table
(no file is rewritten; the rows already there read it as NULL), a type widened the way Iceberg allows (int to
bigint, float to double, a decimal's precision at the same scale; a longer varchar is the same string) is
widened; anything else is refused, naming the column and both types, before the table changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from teem_assets.iceberg import retry_conflicts


class SchemaChangeRefused(Exception):
    """A catalogue type the table's column cannot become without rewriting or changing its values."""


def _stored(data_type: T.DataType) -> T.DataType:
    """The type Iceberg stores a Spark type as (it has no 8- or 16-bit integers)."""
    return T.IntegerType() if isinstance(data_type, (T.ByteType, T.ShortType)) else data_type


def widens(old: T.DataType, new: T.DataType) -> bool:
    """Whether every value of `old` is, unchanged, a value of `new`, as Iceberg's type promotion allows."""
    old, new = _stored(old), _stored(new)
    if old == new:
        return True
    if isinstance(old, T.IntegerType) and isinstance(new, T.LongType):
        return True
    if isinstance(old, T.FloatType) and isinstance(new, T.DoubleType):
        return True
    if isinstance(old, T.DecimalType) and isinstance(new, T.DecimalType):
        return new.scale == old.scale and new.precision >= old.precision
    return False


@dataclass
class SchemaChange:
    added: list[T.StructField] = field(default_factory=list)
    widened: list[tuple[str, T.DataType]] = field(default_factory=list)  # column, its new type

    def __bool__(self) -> bool:
        return bool(self.added or self.widened)


def planned_change(current: T.StructType, wanted: T.StructType, name: str) -> SchemaChange:
    """What makes the table `name` of schema `current` hold `wanted`'s columns; raises SchemaChangeRefused
    naming every column it cannot change. Columns the catalogue no longer has stay as they are."""
    found = {f.name: f.dataType for f in current.fields}
    change, refused = SchemaChange(), []
    for column in wanted.fields:
        old = found.get(column.name)
        if old is None:
            change.added.append(column)
        elif _stored(old) != _stored(column.dataType):
            if widens(old, column.dataType):
                change.widened.append((column.name, column.dataType))
            else:
                refused.append(f"{column.name}: {old.simpleString()} in the table, {column.dataType.simpleString()} "
                               "in the catalogue")  # fmt: skip
    if refused:
        raise SchemaChangeRefused(
            f"{name}: the catalogue changed types the table cannot take without rewriting its values, so no table "
            f"was changed: {'; '.join(refused)}. Only int to bigint, float to double, a decimal's precision and a "
            "longer varchar widen in place; anything else needs a new table."
        )
    return change


def current_schema(spark: SparkSession, identifier: str) -> T.StructType:
    return spark.table(identifier).schema


def evolve(spark: SparkSession, identifier: str, wanted: T.StructType) -> SchemaChange:
    """Apply `planned_change` to the table, each statement a metadata commit. A statement that fails because
    another run made the same change a moment earlier is no failure: nothing is left to change."""
    change = planned_change(current_schema(spark, identifier), wanted, identifier)
    try:
        if change.added:
            columns = ", ".join(f"`{c.name}` {c.dataType.simpleString()}" for c in change.added)
            retry_conflicts(lambda: spark.sql(f"ALTER TABLE {identifier} ADD COLUMNS ({columns})"))
        for name, data_type in change.widened:
            statement = f"ALTER TABLE {identifier} ALTER COLUMN `{name}` TYPE {data_type.simpleString()}"
            retry_conflicts(lambda statement=statement: spark.sql(statement))
    except Exception:
        if planned_change(current_schema(spark, identifier), wanted, identifier):
            raise
    return change
