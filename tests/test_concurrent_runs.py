"""Production is several runs at once on workers that remember nothing: batch runs started at the same moment
in separate processes end in exactly the tables of the same runs one after another, and a run killed in the
middle of a commit leaves every table readable as it was, the re-run converging to the undisturbed result."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_helpers import definitions, run_job
from tables import iceberg_rows, sorted_rows

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import FACTS, TABLES
from teem_assets.runner import ensure_instance_settings
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

ROOT = Path(__file__).resolve().parents[1]
SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=6, seed=7)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
ICEBERG = [("migrated", name) for name in TABLES] + [("aggregates", name) for name in AGGREGATES]


def _drop(url: str, schema: str) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    connection.close()


def state(root: Path, url: str, schema: str) -> dict[tuple[str, str], list[tuple]]:
    """Every table the pipeline writes, whole: the Iceberg tables and their PostgreSQL exports."""
    found = {key: sorted_rows(iceberg_rows(root, *key)) for key in ICEBERG}
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        for name in [*TABLES, *AGGREGATES]:
            cursor.execute(f'SELECT * FROM "{schema}"."{name}"')
            found[("postgres", name)] = sorted(cursor.fetchall(), key=repr)
    connection.close()
    return found


def _child(day: str, root: Path, url: str, schema: str, dagster_home: Path, home: Path) -> subprocess.Popen:
    """A batch run of `day` executing directly in a process of its own (no queue in front of it)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "TEEM_ROOT": str(root),
        "TEEM_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "TEEM_POSTGRES_URL": url,
        "TEEM_PG_SCHEMA": schema,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "stage_child.py"), "job:batch_job", day],
        env=env,
        cwd=str(home),
        stdout=open(home / "run.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _started(monkeypatch, root: Path, url: str, schema: str, days: list[str]):
    generate_sample(str(root), SPEC, UnloadOptions())
    defs = definitions(monkeypatch, root, url, schema)
    assert run_job(defs, "snapshot_job").success
    for day in days:
        assert run_job(defs, "batch_job", day).success
    return defs


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, postgres_url, spark):
    """The six batches one after another, and the tables after each of them."""
    schema = "t_concurrent_baseline"
    _drop(postgres_url, schema)
    root = tmp_path_factory.mktemp("baseline")
    after: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as patch:
        defs = _started(patch, root, postgres_url, schema, [])
        for day in DAYS:
            assert run_job(defs, "batch_job", day).success
            after[day] = state(root, postgres_url, schema)
    yield after
    _drop(postgres_url, schema)


@pytest.mark.slow
def test_batch_runs_started_at_once_equal_the_same_runs_one_after_another(
    baseline, tmp_path, monkeypatch, postgres_url, pg_schema, spark
):
    root = tmp_path / "root"
    _started(monkeypatch, root, postgres_url, pg_schema, DAYS[:1])
    dagster_home = tmp_path / "dagster"  # one instance: its pools keep writers of one table apart
    ensure_instance_settings(str(dagster_home))  # created once, as a deployment's instance is, before the runs
    dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    for wave in (DAYS[1:3], DAYS[3:6]):  # two runs at once, then three
        children = [
            _child(day, root, postgres_url, pg_schema, dagster_home, tmp_path / f"worker-{day}") for day in wave
        ]
        for day, child in zip(wave, children):
            assert child.wait(900) == 0, (tmp_path / f"worker-{day}" / "run.log").read_text()[-6000:]
    got = state(root, postgres_url, pg_schema)
    expected = baseline[DAYS[-1]]
    for key in expected:
        assert got[key] == expected[key], key
        assert len(got[key]) > 0


def _kill_at_commit(child: subprocess.Popen, metadata: Path, timeout: float = 600) -> bool:
    """SIGKILL the run the moment a new metadata file appears in `metadata`: Iceberg writes it just before
    the catalog swaps to it (the commit). True when killed there, False when the run ended first."""
    seen = set(metadata.glob("*.metadata.json")) if metadata.exists() else set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if metadata.exists() and set(metadata.glob("*.metadata.json")) - seen:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
            return True
        time.sleep(0.005)
    return False


def _killed_run(day: str, root: Path, url: str, schema: str, work: Path, database: str, table: str) -> None:
    """Run batch `day` in a process of its own and SIGKILL it the moment it commits to `database.table`."""
    child = _child(day, root, url, schema, work / "dagster", work / "worker")
    try:
        killed = _kill_at_commit(child, root / "warehouse" / database / table / "metadata")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert killed, (work / "worker" / "run.log").read_text()[-4000:]


@pytest.mark.slow
def test_runs_killed_during_a_commit_leave_the_tables_readable_and_the_reruns_converge(
    baseline, tmp_path, monkeypatch, postgres_url, pg_schema, spark
):
    """Batch 4 killed in its MERGE's commit, batch 5 in an aggregate's: after each kill every table reads whole,
    as before the run or as after the batch; each is run again, and the end equals the undisturbed runs."""
    root = tmp_path / "root"
    defs = _started(monkeypatch, root, postgres_url, pg_schema, DAYS[:3])
    for day, (database, table) in (
        (DAYS[3], ("migrated", FACTS[0].name)),
        (DAYS[4], ("aggregates", "agg_hourly_space")),
    ):
        before = state(root, postgres_url, pg_schema)
        _killed_run(day, root, postgres_url, pg_schema, tmp_path / f"killed-{day}", database, table)
        now = state(root, postgres_url, pg_schema)
        for key in now:
            assert now[key] in (before[key], baseline[day][key]), (day, key)
        assert run_job(defs, "batch_job", day).success
        assert state(root, postgres_url, pg_schema) == baseline[day]
    assert run_job(defs, "batch_job", DAYS[5]).success
    assert state(root, postgres_url, pg_schema) == baseline[DAYS[-1]]
