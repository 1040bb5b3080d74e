"""A stage's report as Dagster results: the conversion Dagster Pipes applies to a remote stage's messages,
applied to an in-process stage's report too, so both show the same metadata."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dagster as dg
from dagster._core.definitions.metadata.external_metadata import metadata_map_from_external

from teem_assets.stages.report import FAILURES, StageReport

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


def failures_in(custom_messages: Sequence[Any]) -> list[str]:
    """The failures a remote stage reported (a Pipes custom message of `teem_assets.stages.entry`)."""
    return [f for message in custom_messages if isinstance(message, dict) for f in message.get(FAILURES, [])]


def then_fail(results: Iterable[StageResult], failures: list[str]) -> Iterator[StageResult]:
    """The stage's results, then, if some of its tables could not be done, a failure naming each: what was
    done is recorded, and the step stops without a retry (the input must be fixed first)."""
    yield from results
    if failures:
        raise dg.Failure(
            description="could not be done, and not retried (fix the input, then run again):\n- "
            + "\n- ".join(failures),
            allow_retries=False,
        )
