"""Freshness: the newest migrated batch is no older than TEEM_FRESHNESS_MAX_AGE_HOURS."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from resources.thresholds import CheckThresholds
from teem_assets.assets.keys import migrated_key
from teem_assets.catalogue import FACTS

CHECK = "newest_batch_is_fresh"


@dataclass(frozen=True)
class Freshness:
    newest: str | None  # the newest batch date materialized, if any
    age_hours: float | None  # since the end of that day (UTC), when its unload could first be complete
    max_age_hours: float

    @property
    def passed(self) -> bool:
        return self.age_hours is not None and self.age_hours <= self.max_age_hours


def freshness(newest: str | None, now: dt.datetime, max_age_hours: float) -> Freshness:
    if newest is None:
        return Freshness(None, None, max_age_hours)
    complete = dt.datetime.combine(dt.date.fromisoformat(newest) + dt.timedelta(days=1), dt.time(), dt.UTC)
    return Freshness(newest, (now - complete).total_seconds() / 3600, max_age_hours)


def _freshness_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name=CHECK,
        description="The newest batch date materialized here is at most TEEM_FRESHNESS_MAX_AGE_HOURS (48) old, "
        "counted from the end of its day. It notices unloads that stopped arriving or runs that stopped "
        "starting, which no check on a materialization can see. Run hourly by freshness_schedule.",
    )
    def newest_batch_is_fresh(
        context: dg.AssetCheckExecutionContext, thresholds: CheckThresholds
    ) -> dg.AssetCheckResult:
        batches = context.instance.get_materialized_partitions(key)
        newest = max(batches) if batches else None
        found = freshness(newest, dt.datetime.now(dt.UTC), thresholds.freshness_max_age_hours)
        return dg.AssetCheckResult(
            passed=found.passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_batch": found.newest or "none",
                "age_hours": round(found.age_hours, 1) if found.age_hours is not None else -1,
                "max_age_hours": found.max_age_hours,
            },
        )

    return newest_batch_is_fresh


freshness_checks = [_freshness_check(migrated_key(table)) for table in FACTS]
