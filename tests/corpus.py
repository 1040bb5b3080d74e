"""The shared UNLOAD corpus (../shared/unload-corpus): its cases and how to compare decoded rows with them."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from teem_assets.redshift_types import RedshiftType, parse_type

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "unload-corpus"

# The corpus names bare types; decimal gets room for its widest value (case_24).
CORPUS_TYPES = {
    "decimal": "decimal(38,9)",
    "char": "char(10)",
}


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    spec: dict[str, Any]

    @property
    def columns(self) -> list[tuple[str, RedshiftType]]:
        names = self.spec.get("columns") or ["varchar"] * self.spec["ncols"]
        return [(f"c{i}", parse_type(CORPUS_TYPES.get(t, t))) for i, t in enumerate(names)]

    @property
    def escaped_null(self) -> str:
        return self.spec.get("decoder_options", {}).get("escaped_null", "null")


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("case_*.json")):
        cases.append(Case(path.stem, path.with_suffix(".txt").read_bytes(), json.loads(path.read_text())))
    return cases


def expected_value(value: Any, rtype: RedshiftType) -> Any:
    """The corpus's JSON value as the Python value a decoded cell must equal."""
    if value is None:
        return None
    kind = rtype.kind.value
    if kind == "decimal":
        return Decimal(value)
    if kind in ("real", "double precision"):
        number = float(value) if isinstance(value, str) else value
        return float(np.float32(number)) if kind == "real" else number
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind in ("timestamp", "timestamptz"):
        return dt.datetime.fromisoformat(value)
    return value


def same_value(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, dt.datetime) and expected.tzinfo is not None and isinstance(actual, dt.datetime):
        if actual.tzinfo is None:
            actual = actual.replace(tzinfo=dt.UTC)
        return actual == expected
    if expected is None:
        return actual is None
    return type(actual) is type(expected) and actual == expected
