"""Undoing publications (`teem rollback`): every migrated and aggregate Iceberg table back to the snapshot its
`main` pointed at a moment before (Iceberg's snapshot log), planned for every table before any table moves.

The commits undone stay in the table's metadata, off `main`, until the snapshot retention expires them: the keys
they wrote are read from their added data files, so the PostgreSQL side can be made equal again, and a rollback
that was killed part way finds the same keys when it runs again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyiceberg.manifest import ManifestContent, ManifestEntryStatus

from teem_assets.postgres.keys import KeySet
from teem_assets.unload.location import parquet_dataset


class RollbackRefused(Exception):
    """The rollback cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class TablePlan:
    database: str
    name: str
    current: int | None  # main's snapshot now
    target: int | None  # main's snapshot at the cutoff
    written_after: list[int]  # every snapshot committed after the cutoff, on main or not (oldest first)

    @property
    def moves(self) -> bool:
        return self.current != self.target


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def plan_table(iceberg_table, database: str, name: str, cutoff: dt.datetime) -> TablePlan:  # noqa: ANN001
    """Where `main` of the table was at `cutoff` (aware), refused when that state is no longer in the history."""
    metadata = iceberg_table.refresh().metadata
    current = iceberg_table.current_snapshot()
    cutoff_ms = _millis(cutoff)
    written_after = sorted(
        (s for s in metadata.snapshots if s.timestamp_ms > cutoff_ms), key=lambda s: (s.timestamp_ms, s.snapshot_id)
    )
    earlier = [entry for entry in metadata.snapshot_log if entry.timestamp_ms <= cutoff_ms]
    if earlier:
        target: int | None = earlier[-1].snapshot_id
        if iceberg_table.snapshot_by_id(target) is None:
            raise RollbackRefused(
                f"{database}.{name}: its snapshot at {cutoff.isoformat()} ({target}) has expired (snapshot "
                "retention, TEEM_SNAPSHOT_RETENTION_DAYS); the state before it cannot be restored from Iceberg"
            )
    elif current is None or not written_after:
        target = current.snapshot_id if current else None  # nothing committed after the cutoff
    else:
        first = metadata.snapshot_log[0] if metadata.snapshot_log else None
        parent = iceberg_table.snapshot_by_id(first.snapshot_id).parent_snapshot_id if first else None
        if parent is not None:
            raise RollbackRefused(
                f"{database}.{name}: its history before {dt.datetime.fromtimestamp(first.timestamp_ms / 1000, dt.UTC)} "
                f"has expired (snapshot retention, TEEM_SNAPSHOT_RETENTION_DAYS); {cutoff.isoformat()} is before it"
            )
        raise RollbackRefused(
            f"{database}.{name}: the table had no data yet at {cutoff.isoformat()}; there is no earlier state to "
            "return to (drop the table and run again from the first batch instead)"
        )
    return TablePlan(
        database, name, current.snapshot_id if current else None, target, [s.snapshot_id for s in written_after]
    )


def roll_back(iceberg_table, plan: TablePlan) -> None:  # noqa: ANN001
    """`main` set to the plan's target, in one commit that fails if `main` moved since the plan was made."""
    table = iceberg_table.refresh()
    now = table.current_snapshot()
    if (now.snapshot_id if now else None) != plan.current:
        raise RollbackRefused(
            f"{plan.database}.{plan.name}: main moved to {now.snapshot_id if now else None} while the rollback was "
            "planned (another run published): run the rollback again"
        )
    if plan.moves and plan.target is not None:
        with table.manage_snapshots() as update:
            update.set_current_snapshot(snapshot_id=plan.target)


def _local(path: str) -> str:
    return path[len("file:") :] if path.startswith("file:") and not path.startswith("file://") else path


def files_written(iceberg_table, snapshot_ids: list[int]) -> list[str]:  # noqa: ANN001
    """The data files the snapshots added."""
    files: list[str] = []
    wanted = set(snapshot_ids)
    for snapshot_id in snapshot_ids:
        snapshot = iceberg_table.snapshot_by_id(snapshot_id)
        for manifest in snapshot.manifests(iceberg_table.io):
            if manifest.content != ManifestContent.DATA or manifest.added_snapshot_id not in wanted:
                continue
            for entry in manifest.fetch_manifest_entry(iceberg_table.io):
                if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot_id:
                    files.append(_local(entry.data_file.file_path))
    return sorted(set(files))


def keys_written(iceberg_table, key: str, snapshot_ids: list[int]) -> KeySet:  # noqa: ANN001
    """The primary keys of every row in the data files the snapshots added: the rows they changed and the
    rows a copy-on-write rewrite carried over (rewriting those again is harmless)."""
    files = files_written(iceberg_table, snapshot_ids)
    if not files:
        return KeySet.of([])
    return KeySet.of(parquet_dataset(files).to_table(columns=[key]).column(key))
