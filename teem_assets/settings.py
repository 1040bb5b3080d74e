"""Settings from the environment (README lists them); nothing secret is read here."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The project's local state directory: `TEEM_HOME`, else `.teem` in the working directory."""
    return Path(os.environ.get("TEEM_HOME") or Path.cwd() / ".teem").resolve()


def data_root() -> str:
    """Where unloads, Parquet and migrated tables live: `TEEM_ROOT` (a folder or s3:// prefix)."""
    return os.environ.get("TEEM_ROOT") or str(state_dir() / "root")
