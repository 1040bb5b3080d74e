"""Decoded rows as JSON values: timestamps ISO-8601, decimals as strings in plain notation at their column's
scale, non-finite floats as strings."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa


def _float(value: float, single: bool) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(str(np.float32(value))) if single else value


def json_value(value: Any, arrow_type: pa.DataType) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):  # str() would print a zero of scale 10 as 0E-10
        return f"{value:.{arrow_type.scale}f}" if pa.types.is_decimal(arrow_type) else format(value, "f")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float):
        return _float(value, pa.types.is_float32(arrow_type))
    return value


def json_lines(table: pa.Table) -> Iterator[str]:
    types = [f.type for f in table.schema]
    names = table.column_names
    for row in table.to_pylist():
        yield json.dumps({name: json_value(row[name], t) for name, t in zip(names, types)}, ensure_ascii=False)
