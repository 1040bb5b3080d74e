"""Where each layer lives under a root, a folder or `s3://bucket/prefix` (DESIGN §2); the one place that
spells these paths. The migrated tables and the aggregates are Iceberg tables under `warehouse/`, named
through the catalog (`teem_assets.iceberg`), not by path."""

from __future__ import annotations

import datetime as dt
import re


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def raw_snapshot(root: str, table: str) -> str:
    return _join(root, "csv", table, "snapshot")


def raw_batch(root: str, table: str, day: dt.date | str) -> str:
    return _join(root, "csv", table, "incremental", str(day))


def raw_incremental(root: str, table: str) -> str:
    return _join(root, "csv", table, "incremental")


def parquet_table(root: str, table: str) -> str:
    return _join(root, "parquet", table)


def parquet_snapshot(root: str, table: str) -> str:
    return _join(root, "parquet", table, "snapshot")


def parquet_batch(root: str, table: str, day: dt.date | str) -> str:
    return _join(root, "parquet", table, f"batch_date={day}")


def quarantine(root: str, table: str, batch: dt.date | str) -> str:
    return _join(root, "quarantine", table, str(batch))


def iceberg_table(root: str, database: str, name: str) -> str:
    """The location the catalog gives a table it creates: under its database's, `<root>/warehouse/<database>`."""
    return _join(root, "warehouse", database, name)


def default_databases(root: str) -> tuple[str, str]:
    """A root's catalog databases, migrated and aggregates: `migrated` and `aggregates` in a folder root's own
    catalog; in AWS Glue, which the roots of an account share, names derived from the root
    (`s3://teem-prod/edw` -> `teem_prod_edw_migrated`), so that two roots never write each other's tables."""
    if not root.startswith("s3://"):
        return "migrated", "aggregates"
    slug = re.sub(r"[^a-z0-9]+", "_", root[len("s3://") :].lower()).strip("_")
    return f"{slug}_migrated", f"{slug}_aggregates"
