"""`teem runs`: the instance's runs, newest first, with their status, batch dates, the pools they hold and, for
a run ended because its worker was gone, why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from jobs.dead_runs import ENDED_TAG, pools_held


@dataclass(frozen=True)
class RunLine:
    run_id: str
    job: str
    status: str
    dates: str
    started: str
    pools: list[str]
    ended_because: str

    def __str__(self) -> str:
        pools = ",".join(self.pools) or "-"
        line = f"{self.run_id[:8]}  {self.job:<15} {self.status:<9} {self.dates:<23} {self.started:<20} {pools}"
        return f"{line}\n          ended: {self.ended_because}" if self.ended_because else line


def _dates(tags: dict[str, str]) -> str:
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        first, last = tags[ASSET_PARTITION_RANGE_START_TAG], tags.get(ASSET_PARTITION_RANGE_END_TAG, "")
        return first if first == last else f"{first}..{last}"
    return tags.get(PARTITION_NAME_TAG, "-")


def _time(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if timestamp else "-"


def run_lines(instance: dg.DagsterInstance, limit: int) -> list[RunLine]:
    lines = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        tags = dict(run.tags)
        lines.append(
            RunLine(
                run.run_id,
                run.job_name,
                run.status.value,
                _dates(tags),
                _time(record.start_time),
                pools_held(instance, run.run_id),
                tags.get(ENDED_TAG, ""),
            )
        )
    return lines


HEADER = f"{'run':<8}  {'job':<15} {'status':<9} {'batch dates':<23} {'started (UTC)':<20} pools held"
