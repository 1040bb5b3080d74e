"""Text fields to typed Arrow arrays, per Redshift type, with the rows whose text is not a valid value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from teem_assets.redshift_types import EARLIEST, RedshiftType

_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError)


def _cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_boolean(target):
        is_true = pc.equal(values, "t")
        recognised = pc.or_(is_true, pc.equal(values, "f"))
        if pc.any(pc.invert(recognised)).as_py():
            raise pa.ArrowInvalid("a boolean is t or f")
        return is_true
    return pc.cast(values, target)


def _uncastable(values: pa.Array, target: pa.DataType, offset: int = 0) -> list[int]:
    """Indices of the values that do not convert; bisects, so k bad values cost O(k log n) casts."""
    try:
        _cast(values, target)
        return []
    except _CAST_ERRORS:
        if len(values) == 1:
            return [offset]
    half = len(values) // 2
    return _uncastable(values.slice(0, half), target, offset) + _uncastable(values.slice(half), target, offset + half)


def to_typed(values: pa.Array, rtype: RedshiftType) -> tuple[pa.Array, list[int]]:
    """Convert a string array to the Arrow type of `rtype`; return the array and the bad indices.

    Bad values become nulls in the returned array; the caller quarantines their records.
    """
    target = rtype.arrow_type()
    if rtype.is_text:
        return values.cast(target), []
    try:
        return _cast(values, target), []
    except _CAST_ERRORS:
        bad = _uncastable(values, target)
    flags = [False] * len(values)
    for index in bad:
        flags[index] = True
    cleaned = pc.if_else(pa.array(flags), pa.scalar(None, values.type), values)
    return _cast(cleaned, target), bad


def before_earliest(typed: pa.Array, rtype: RedshiftType) -> list[int]:
    """Indices of the dates and timestamps before EARLIEST: valid in Redshift (year 0000 casts), held by none of
    the readers downstream."""
    if not rtype.is_temporal or len(typed) == 0:
        return []
    early = pc.fill_null(pc.less(typed, pa.scalar(EARLIEST).cast(typed.type)), False)
    if not pc.any(early).as_py():
        return []
    return [int(i) for i in np.flatnonzero(early.to_numpy(zero_copy_only=False))]
