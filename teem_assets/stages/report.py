"""What a stage returns: its tables' materializations and its checks' verdicts, with metadata in Dagster
Pipes' external form (`{"raw_value", "type"}`), so that a report crosses a process or a cluster as JSON and
the UI shows the same metadata wherever the stage ran."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Metadata = dict[str, dict[str, Any]]


def value(raw: Any, kind: str = "__infer__") -> dict[str, Any]:
    return {"raw_value": raw, "type": kind}


def text(raw: str) -> dict[str, Any]:
    return value(raw, "text")


def markdown(raw: str) -> dict[str, Any]:
    return value(raw, "md")


def json_value(raw: Any) -> dict[str, Any]:
    return value(raw, "json")


def path(raw: str) -> dict[str, Any]:
    return value(raw, "path")


def url(raw: str) -> dict[str, Any]:
    return value(raw, "url")


def metadata(**values: Any) -> Metadata:
    """Plain values become inferred entries; entries built by the functions above pass unchanged."""
    return {k: v if isinstance(v, dict) and "raw_value" in v else value(v) for k, v in values.items()}


@dataclass
class AssetReport:
    asset_key: str  # "layer/table", as Dagster writes a key in a string
    metadata: Metadata


@dataclass
class CheckReport:
    asset_key: str
    check_name: str
    passed: bool
    metadata: Metadata
    severity: str = "ERROR"  # or "WARN"


FAILURES = "teem_failures"  # the key of the Pipes custom message that carries a report's failures


@dataclass
class StageReport:
    materializations: list[AssetReport] = field(default_factory=list)
    checks: list[CheckReport] = field(default_factory=list)
    # What could not be done, each naming its table, batch, file and reason; the rest is reported above.
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageReport:
        return cls(
            [AssetReport(**m) for m in data.get("materializations", [])],
            [CheckReport(**c) for c in data.get("checks", [])],
            list(data.get("failures", [])),
        )
