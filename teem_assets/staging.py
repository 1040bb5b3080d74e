"""Write, audit, publish (DESIGN §2): a run writes a table on a branch of its own, its blocking checks read the
branch, and the table's `main`, which every reader reads, moves to it only once they passed. A branch that was
not published (a failed check, a killed run) stays for inspection and expires after the staged retention."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyspark.sql import SparkSession


class PublishConflict(Exception):
    """`main` moved after the branch was staged from it (another run published): stage again from the new main."""


def staged_branch(run_id: str) -> str:
    """The branch a run stages its writes on: one per run and table (a retried step stages it afresh)."""
    return "staged_" + run_id.replace("-", "_")


def stage_branch(spark: SparkSession, identifier: str, branch: str, retention: dt.timedelta) -> str:
    """Start `branch` afresh at the table's current `main` (an earlier attempt's branch is dropped), kept for
    `retention` once unpublished; returns the identifier that writes and reads it."""
    minutes = max(1, round(retention.total_seconds() / 60))
    spark.sql(f"ALTER TABLE {identifier} DROP BRANCH IF EXISTS `{branch}`")
    spark.sql(f"ALTER TABLE {identifier} CREATE BRANCH `{branch}` RETAIN {minutes} MINUTES")
    return f"{identifier}.branch_{branch}"


@dataclass(frozen=True)
class Published:
    snapshot_id: int  # main's snapshot now
    previous: int | None  # main's snapshot before


def publish(iceberg_table, branch: str, staged: int) -> Published:  # noqa: ANN001 - a pyiceberg Table
    """Fast-forward `main` to `staged` (the head of `branch` the checks read) and drop the branch, in one
    commit. Raises PublishConflict when `main` is no longer an ancestor of it: another run published since the
    branch was staged, and what this run checked is no longer what publishing would make current."""
    table = iceberg_table.refresh()
    current = table.current_snapshot()
    previous = current.snapshot_id if current else None
    if previous is not None and not _is_ancestor(table, previous, staged):
        raise PublishConflict(
            f"{'.'.join(table.name())}: main moved to snapshot {previous} after {branch} was staged from it"
        )
    try:
        with table.manage_snapshots() as update:
            update.set_current_snapshot(snapshot_id=staged)
            if branch in table.refs():
                update.remove_branch(branch)
    except CommitFailedException as error:  # main moved between the look and the commit
        raise PublishConflict(f"{'.'.join(table.name())}: {error}") from error
    return Published(staged, previous)


def _is_ancestor(table, ancestor: int, snapshot_id: int) -> bool:  # noqa: ANN001 - a pyiceberg Table
    snapshot = table.snapshot_by_id(snapshot_id)
    while snapshot is not None:
        if snapshot.snapshot_id == ancestor:
            return True
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return False
