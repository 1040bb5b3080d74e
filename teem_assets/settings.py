"""Settings from the environment (README lists them); nothing secret is read here."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path


def state_dir() -> Path:
    """The project's local state directory: `TEEM_HOME`, else `.teem` in the working directory."""
    return Path(os.environ.get("TEEM_HOME") or Path.cwd() / ".teem").resolve()


def data_root() -> str:
    """Where unloads, Parquet and migrated tables live: `TEEM_ROOT` (a folder or s3:// prefix)."""
    return os.environ.get("TEEM_ROOT") or str(state_dir() / "root")


def volume_threshold() -> float:
    """A batch must hold at least this share of its baseline, the same weekday of the trailing weeks
    (TEEM_VOLUME_THRESHOLD)."""
    return float(os.environ.get("TEEM_VOLUME_THRESHOLD", "0.95"))


def trailing_weeks() -> int:
    """How many weeks back the volume check looks for batches of the same weekday (TEEM_TRAILING_WEEKS)."""
    return int(os.environ.get("TEEM_TRAILING_WEEKS", "4"))


def trailing_batches() -> int:
    """How many earlier batches the companies check compares with (TEEM_TRAILING_BATCHES)."""
    return int(os.environ.get("TEEM_TRAILING_BATCHES", "7"))


def snapshot_shrink_threshold() -> float:
    """A dimension snapshot must hold at least this share of the current table's rows
    (TEEM_SNAPSHOT_SHRINK_THRESHOLD)."""
    return float(os.environ.get("TEEM_SNAPSHOT_SHRINK_THRESHOLD", "0.9"))


def freshness_max_age_hours() -> float:
    """How old the newest migrated batch may be, counted from the end of its day (TEEM_FRESHNESS_MAX_AGE_HOURS)."""
    return float(os.environ.get("TEEM_FRESHNESS_MAX_AGE_HOURS", "48"))


def unload_settle_seconds() -> float:
    """An unload without a manifest is complete when no part has changed for this long
    (TEEM_UNLOAD_SETTLE_SECONDS)."""
    return float(os.environ.get("TEEM_UNLOAD_SETTLE_SECONDS", "600"))


def sensor_interval_seconds() -> int:
    """How often the unload sensors look (TEEM_SENSOR_INTERVAL_SECONDS)."""
    return int(os.environ.get("TEEM_SENSOR_INTERVAL_SECONDS", "30"))


def sweep_interval() -> dt.timedelta:
    """How often the batch unload sensor lists every date, to notice old unloads uploaded again
    (TEEM_SENSOR_SWEEP_HOURS)."""
    return dt.timedelta(hours=float(os.environ.get("TEEM_SENSOR_SWEEP_HOURS", "24")))


def snapshot_retention_days() -> float:
    """How long the Iceberg tables keep old snapshots (TEEM_SNAPSHOT_RETENTION_DAYS)."""
    return float(os.environ.get("TEEM_SNAPSHOT_RETENTION_DAYS", "7"))


def webserver_url() -> str:
    """Where the Dagster UI is served, for the links in alerts (TEEM_WEBSERVER_URL)."""
    return os.environ.get("TEEM_WEBSERVER_URL", "http://127.0.0.1:3000").rstrip("/")


def orphan_sweep_days() -> float:
    """How often, at most, each Iceberg table's orphan files are removed (TEEM_ORPHAN_SWEEP_DAYS)."""
    return float(os.environ.get("TEEM_ORPHAN_SWEEP_DAYS", "7"))


def first_batch_date() -> str:
    """The first daily partition of every fact asset (TEEM_FIRST_BATCH_DATE)."""
    return os.environ.get("TEEM_FIRST_BATCH_DATE", "2019-09-01")


def migrated_database() -> str:
    """The catalog database of the migrated tables (TEEM_MIGRATED_DATABASE)."""
    return os.environ.get("TEEM_MIGRATED_DATABASE") or "migrated"


def aggregates_database() -> str:
    """The catalog database of the aggregates (TEEM_AGGREGATES_DATABASE)."""
    return os.environ.get("TEEM_AGGREGATES_DATABASE") or "aggregates"


def postgres_schema() -> str:
    """The PostgreSQL schema the exports are written to (TEEM_PG_SCHEMA)."""
    return os.environ.get("TEEM_PG_SCHEMA") or "teem"


def _positive_seconds(variable: str, default: str) -> float:
    text = os.environ.get(variable) or default
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{variable} is {text!r}: a number of seconds") from None
    if seconds <= 0:
        raise ValueError(f"{variable} is {text!r}: a number of seconds above 0")
    return seconds


def run_heartbeat_timeout_seconds() -> float:
    """A run on another host whose heartbeat is older than this is dead (TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS)."""
    return _positive_seconds("TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS", "300")


def max_runtime_seconds() -> int:
    """Every job's `dagster/max_runtime`: run monitoring ends a run that runs longer (TEEM_MAX_RUNTIME_SECONDS)."""
    return int(_positive_seconds("TEEM_MAX_RUNTIME_SECONDS", "21600"))
