"""A stage's report as Dagster results: the conversion Dagster Pipes applies to a remote stage's messages,
applied to an in-process stage's report too, so both show the same metadata."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.metadata.external_metadata import metadata_map_from_external

from teem_assets.stages.report import StageReport

StageResult = dg.MaterializeResult | dg.AssetCheckResult


def results_of(report: StageReport) -> list[StageResult]:
    results: list[StageResult] = [
        dg.MaterializeResult(
            asset_key=dg.AssetKey.from_escaped_user_string(item.asset_key),
            metadata=metadata_map_from_external(item.metadata),
        )
        for item in report.materializations
    ]
    results += [
        dg.AssetCheckResult(
            asset_key=dg.AssetKey.from_escaped_user_string(check.asset_key),
            check_name=check.check_name,
            passed=check.passed,
            severity=dg.AssetCheckSeverity(check.severity),
            metadata=metadata_map_from_external(check.metadata),
        )
        for check in report.checks
    ]
    return results
