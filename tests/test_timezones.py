"""Timestamps do not move when the process, the JVMs and the Spark session are set to another zone."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_DAYS, SAMPLE_SPEC, STARTING_ZONE
from dagster_helpers import run_job

from teem_assets.catalogue import TABLES
from teem_assets.layout import raw_batch
from teem_assets.sample.generate import batch_rows

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2019, 9, 9)
TABLE = "fact_event_by_day"
# time.timezone of each zone: seconds west of UTC outside daylight saving.
STANDARD_OFFSET = {"America/Los_Angeles": 8 * 3600, "Asia/Kolkata": -(5 * 3600 + 30 * 60)}


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata"])
def test_timestamps_unchanged_in_another_zone(sample_root: Path, tmp_path: Path, zone: str):
    env = {
        **os.environ,
        "TZ": zone,
        "JAVA_TOOL_OPTIONS": f"-Duser.timezone={zone}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    folder = raw_batch(str(sample_root), TABLE, DAY)
    child = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "tz_child.py"), folder, TABLE, zone, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout)
    # Spark's clocks are UTC; the process that asked for Spark keeps its own zone (and its environment).
    assert result["probe"] == {
        "jvm": "UTC",
        "session": "UTC",
        "driver": [zone, STANDARD_OFFSET[zone]],
        "worker": [0, "UTC"],
    }

    names = TABLES[TABLE].column_names
    timestamp_columns = [i for i, c in enumerate(TABLES[TABLE].columns) if c.type.kind.value == "timestamp"]
    expected = {
        row[names.index("event_by_day_pk")]: [row[i].isoformat() if row[i] else None for i in timestamp_columns]
        for row in batch_rows(SAMPLE_SPEC, TABLE, DAY)
    }
    got = {row[names.index("event_by_day_pk")]: [row[i] for i in timestamp_columns] for row in result["rows"]}
    assert got == expected


def test_a_whole_run_leaves_the_process_zone_alone(loaded) -> None:
    """A batch through every layer in this process (`loaded`'s tables, which are compared with the oracle
    elsewhere, made again for their last day); the process's zone, and the TZ its children inherit, are still
    the ones it started with."""
    _, _, defs = loaded
    assert run_job(defs, "batch_job", SAMPLE_DAYS[-1]).success
    assert STARTING_ZONE[1] != 0, "run the tests in a zone away from UTC (dev.sh test sets America/Los_Angeles)"
    assert (os.environ.get("TZ"), time.timezone, time.tzname) == STARTING_ZONE
