"""What a stage is asked to do: a small JSON document, the same in-process, under spark-submit and on EMR."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageRequest:
    stage: str  # a name of `teem_assets.stages.STAGES`
    root: dict[str, Any]  # `DataRoot.settings()`: the data root and its catalog, no credentials
    tables: list[str]  # the selected tables (or aggregates) of the stage
    batches: list[str]  # batch dates, or ["snapshot"]
    checks: list[str] = field(default_factory=list)  # "asset/key:check_name" of the selected checks
    settings: dict[str, Any] = field(default_factory=dict)  # the checks' thresholds, read where Dagster runs
    # The branch its tables are written on, for Dagster to publish once the blocking checks passed
    # (teem_assets.staging); None: written to main.
    stage_to: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, document: str | dict[str, Any]) -> StageRequest:
        data = json.loads(document) if isinstance(document, str) else document
        return cls(**data)

    def wants(self, asset_key: str, check_name: str) -> bool:
        return f"{asset_key}:{check_name}" in self.checks
