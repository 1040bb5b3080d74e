"""The aggregates do not move with the clocks: child processes whose driver, JVMs, session and Python
workers are set to another zone, and a real standalone cluster whose worker runs in Los Angeles (where
the predecessor's 7-hour shift lived), give the hand-written results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest
from servers import free_port, running, wait_for
from test_aggregate_rules import as_output_rows, hourly_expected, week_expected

ROOT = Path(__file__).resolve().parents[1]
# time.timezone of each zone: seconds west of UTC outside daylight saving.
STANDARD_OFFSET = {"America/Los_Angeles": 8 * 3600, "Asia/Kolkata": -(5 * 3600 + 30 * 60)}


def utc_in_spark_only(zone: str) -> dict[str, object]:
    """Spark's JVMs, session and Python workers in UTC; the driver process in the zone it was started in."""
    return {"jvm": "UTC", "session": "UTC", "driver": [zone, STANDARD_OFFSET[zone]], "worker": [0, "UTC"],
            "executor_jvm": "UTC"}  # fmt: skip


def _child_env(zone: str) -> dict[str, str]:
    return {
        **os.environ,
        "TZ": zone,
        "JAVA_TOOL_OPTIONS": f"-Duser.timezone={zone}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }


def _run_child(master: str, zone: str) -> dict:
    child = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "aggregate_child.py"), master, zone],
        env=_child_env(zone),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(ROOT / "tests"),
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout)


def _as_json_rows(rows: set[tuple]) -> list[list]:
    return sorted(json.loads(json.dumps(sorted(rows, key=repr), default=str)), key=repr)


def _assert_expected(result: dict, zone: str) -> None:
    assert result["probe"] == utc_in_spark_only(zone)
    assert sorted(result["hourly"], key=repr) == _as_json_rows(as_output_rows(hourly_expected()))
    assert sorted(result["weekly"], key=repr) == _as_json_rows(week_expected())


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata"])
def test_the_aggregates_are_the_same_in_another_zone(zone: str) -> None:
    _assert_expected(_run_child("local[2]", zone), zone)


def test_the_aggregates_are_the_same_on_a_standalone_cluster_in_los_angeles(tmp_path: Path) -> None:
    spark_home = os.path.dirname(pyspark.__file__)
    spark_class = os.path.join(spark_home, "bin", "spark-class")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    env = {**os.environ, "SPARK_HOME": spark_home, "SPARK_LOCAL_IP": "127.0.0.1"}
    worker_env = {**env, "TZ": "America/Los_Angeles", "JAVA_TOOL_OPTIONS": "-Duser.timezone=America/Los_Angeles"}
    master = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(ui)]  # fmt: skip
    worker = [spark_class, "org.apache.spark.deploy.worker.Worker", master_url, "--cores", "2", "--memory", "2g",
              "--webui-port", str(worker_ui), "--work-dir", str(tmp_path / "work")]  # fmt: skip
    with running(master, env, str(tmp_path), str(tmp_path / "master.log")):
        wait_for(lambda: "ALIVE" in (tmp_path / "master.log").read_text(), 60, "the Spark master")
        with running(worker, worker_env, str(tmp_path), str(tmp_path / "worker.log")):
            wait_for(lambda: "Successfully registered" in (tmp_path / "worker.log").read_text(), 60, "the worker")
            result = _run_child(master_url, "America/Los_Angeles")
    _assert_expected(result, "America/Los_Angeles")
