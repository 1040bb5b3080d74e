"""Where each layer lives under a root (DESIGN §2); the one place that spells these paths."""

from __future__ import annotations

import datetime as dt
import os


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def raw_snapshot(root: str, table: str) -> str:
    return _join(root, "csv", table, "snapshot")


def raw_batch(root: str, table: str, day: dt.date | str) -> str:
    return _join(root, "csv", table, "incremental", str(day))


def raw_incremental(root: str, table: str) -> str:
    return _join(root, "csv", table, "incremental")


def parquet_snapshot(root: str, table: str) -> str:
    return _join(root, "parquet", table, "snapshot")


_BATCH = "batch_date="


def parquet_batch(root: str, table: str, day: dt.date | str) -> str:
    return _join(root, "parquet", table, f"{_BATCH}{day}")


def converted_batches(root: str, table: str) -> list[str]:
    """Batch dates whose unload has been converted to Parquet, oldest first (a local root)."""
    folder = _join(root, "parquet", table)
    if not os.path.isdir(folder):
        return []
    return sorted(name[len(_BATCH) :] for name in os.listdir(folder) if name.startswith(_BATCH))


def migrated(root: str, table: str) -> str:
    return _join(root, "migrated", table)


def migrated_partition(root: str, table: str, created_date: dt.date | str) -> str:
    return _join(root, "migrated", table, f"created_date={created_date}")


def quarantine(root: str, table: str, batch: dt.date | str) -> str:
    return _join(root, "quarantine", table, str(batch))


def parquet_table(root: str, table: str) -> str:
    return _join(root, "parquet", table)


def aggregate(root: str, name: str) -> str:
    return _join(root, "aggregates", name)


def aggregate_state(root: str, name: str) -> str:
    """What an aggregate last computed from (hidden from Athena by its leading underscore)."""
    return _join(root, "aggregates", "_state", name)
