"""Production is several runs at once on workers that remember nothing: batch runs started at the same moment
in separate processes end in exactly the tables of the same runs one after another, and a run killed anywhere
(converting, publishing, committing, loading PostgreSQL, replacing a dimension's rows) leaves every table readable as
it was or as it will be, the re-run converging to the undisturbed result and removing what the kill left. And a
14-day range run equals seven single runs and a range run of the other seven days. The single runs are made once,
for both properties. (Batches out of order are test_migration's and test_aggregate_scope's.)"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from conftest import SAMPLE_DAYS
from dagster_helpers import copy_raw, definitions, run_job
from pg_proxy import PostgresProxy
from tables import iceberg_rows, sorted_rows
from tables import pipeline_state as state

from teem_assets import converted, layout
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import FACTS, TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import ORPHAN_AGE, remove_orphan_files
from teem_assets.runner import ensure_instance_settings

ROOT = Path(__file__).resolve().parents[1]
DAYS = SAMPLE_DAYS[:7]  # the chain's; the rest of the sample's days are one range run, after them


def _drop(url: str, schema: str) -> None:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    connection.close()


def _child(
    job: str, day: str | None, root: Path, url: str, schema: str, dagster_home: Path, home: Path
) -> subprocess.Popen:
    """A run of `job` (for batch `day`) executing directly in a process of its own (no queue in front of it)."""
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
        [sys.executable, str(ROOT / "tests" / "stage_child.py"), f"job:{job}", *([day] if day else [])],
        env=env,
        cwd=str(home),
        stdout=open(home / "run.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _started(monkeypatch, sample_root: Path, root: Path, url: str, schema: str, days: list[str]):
    copy_raw(sample_root, root)
    defs = definitions(monkeypatch, root, url, schema)
    assert run_job(defs, "snapshot_job").success
    for day in days:
        assert run_job(defs, "batch_job", day).success
    return defs


@dataclass(frozen=True)
class OneAfterAnother:
    """The sample's batches: DAYS as single runs in order, the tables after each of them kept, then the other
    days as one range run."""

    after: dict[str, dict]
    root: Path
    schema: str


@pytest.fixture(scope="module")
def one_after_another(sample_root, tmp_path_factory, postgres_url, spark) -> Iterator[OneAfterAnother]:
    schema = "t_concurrent_baseline"
    _drop(postgres_url, schema)
    root = tmp_path_factory.mktemp("baseline")
    after: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as patch:
        defs = _started(patch, sample_root, root, postgres_url, schema, [])
        for day in DAYS:
            assert run_job(defs, "batch_job", day).success
            after[day] = state(root, postgres_url, schema)
        assert run_job(defs, "batch_job", SAMPLE_DAYS[len(DAYS)], SAMPLE_DAYS[-1]).success
    yield OneAfterAnother(after, root, schema)
    _drop(postgres_url, schema)


def _wave(
    runs: list[tuple[str, Path]], root: Path, url: str, schema: str, work: Path, stagger: bool
) -> list[subprocess.Popen]:
    """`batch_job` runs of (day, Dagster instance) at once; staggered, each starts once the one before it has
    begun converting, so that the first commits its batch while the next converts the same one."""
    children: list[subprocess.Popen] = []
    for number, (day, dagster_home) in enumerate(runs):
        if stagger and children:
            deadline = time.monotonic() + 300
            while not _converting(day)(root) and children[-1].poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        children.append(_child("batch_job", day, root, url, schema, dagster_home, work / f"worker-{day}-{number}"))
    return children


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed (SIGKILL to its process group): when `on_disk(root)` first holds, or when one of
    its PostgreSQL connections, having run `statements`, is about to send `message` and `in_postgres` holds."""

    name: str
    job: str
    day: str | None
    on_disk: Callable[[Path], bool] | None = None
    in_postgres: Callable[[str, list[str], bytes], bool] | None = None  # (schema, statements, message)


def _converting(day: str) -> Callable[[Path], bool]:
    """Spark has begun writing the batch's Parquet (an attempt folder), before any pointer names it."""
    folders = [Path(layout.parquet_batch("", t.name, day).lstrip("/")) for t in FACTS]
    return lambda root: any(any((root / f).glob(f"{converted.ATTEMPT_PREFIX}*")) for f in folders)


def _published(day: str) -> Callable[[Path], bool]:
    """Both tables' batch pointers are written: the Parquet is published, the migration not begun."""
    pointers = [Path(layout.parquet_batch("", t.name, day).lstrip("/"), converted.POINTER) for t in FACTS]
    return lambda root: all((root / p).exists() for p in pointers)


def _new_file(folder: Path, pattern: str) -> Callable[[Path], bool]:
    """A file matching `pattern` under `folder` (of the root) that was not there at the first look."""
    seen: dict[Path, set[Path]] = {}

    def now(root: Path) -> bool:
        found = set((root / folder).rglob(pattern))
        return bool(found - seen.setdefault(root, found))

    return now


def _committing(database: str, table: str) -> Callable[[Path], bool]:
    """A new metadata file of the table: Iceberg writes it just before the catalog swaps to it (the commit)."""
    return _new_file(Path("warehouse", database, table, "metadata"), "*.metadata.json")


def _writing_data(database: str, table: str) -> Callable[[Path], bool]:
    """A new data file of the table: Spark's tasks are writing, the commit that would name it not begun. (Its
    first new metadata file is no such point: under write-audit-publish that is the branch's creation.)"""
    return _new_file(Path("warehouse", database, table, "data"), "*.parquet")


def _statement(message: bytes) -> str | None:
    return message[5:].rstrip(b"\0").decode(errors="replace") if message[:1] == b"Q" else None


def _copying_batch(table: str) -> Callable[[str, list[str], bytes], bool]:
    """The upsert's COPY into its staging table for `table` is under way (a CopyData message)."""
    return lambda schema, statements, message: (
        message[:1] == b"d"
        and statements[-1].startswith('COPY "pg_temp"."teem_stage"')
        and any(f'LIKE "{schema}"."{table}"' in s for s in statements)
    )


def _copying_into(table: str) -> Callable[[str, list[str], bytes], bool]:
    return lambda schema, statements, message: (
        message[:1] == b"d" and statements[-1].startswith(f'COPY "{schema}"."{table}"')
    )


KILL_POINTS = [
    KillPoint("during the conversion", "batch_job", DAYS[1], on_disk=_converting(DAYS[1])),
    KillPoint("after the Parquet publish", "batch_job", DAYS[2], on_disk=_published(DAYS[2])),
    KillPoint(
        "during the migrated MERGE's commit", "batch_job", DAYS[3], on_disk=_committing("migrated", FACTS[0].name)
    ),
    KillPoint("during the PostgreSQL COPY", "batch_job", DAYS[4], in_postgres=_copying_batch("fact_attendance")),
    KillPoint(
        "while an aggregate's files are written",
        "batch_job",
        DAYS[5],
        on_disk=_writing_data("aggregates", "agg_hourly_space"),
    ),
    KillPoint("during the aggregate export", "batch_job", DAYS[6], in_postgres=_copying_into("agg_hourly_space")),
    KillPoint("during the dimension load", "snapshot_job", None, in_postgres=_copying_into("dim_space")),
]


def _killed_run(point: KillPoint, root: Path, url: str, schema: str, work: Path) -> None:
    """Run `point.job` in a process of its own, its PostgreSQL behind a proxy, and SIGKILL it at `point`."""
    child: list[subprocess.Popen] = []
    killed = threading.Event()
    statements: dict[int, list[str]] = {}

    def watch(connection: int, message: bytes) -> bool:
        said = statements.setdefault(connection, [])
        if (statement := _statement(message)) is not None:
            said.append(statement)
        if point.in_postgres and said and child and point.in_postgres(schema, said, message):
            killed.set()  # before the kill: the run's end is what the test waits on
            os.killpg(child[0].pid, signal.SIGKILL)
            return False
        return True

    proxy = PostgresProxy(url, watch=watch)
    try:
        child.append(_child(point.job, point.day, root, proxy.front_url(), schema, work / "dagster", work / "worker"))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and child[0].poll() is None:
            if point.on_disk and point.on_disk(root):
                killed.set()
                os.killpg(child[0].pid, signal.SIGKILL)
            time.sleep(0.005)
        child[0].wait(30)
    finally:
        if child and child[0].poll() is None:
            os.killpg(child[0].pid, signal.SIGKILL)
        proxy.close()
    assert killed.is_set(), f"{point.name}: the run ended first\n" + (work / "worker" / "run.log").read_text()[-4000:]


def _leftovers(root: Path, url: str, schema: str, day: str | None) -> list[str]:
    """What a killed run may leave that the re-run must have removed: Parquet attempts no pointer names
    (beyond the one before the current, once ATTEMPT_RETENTION has passed: till then a conversion beside this
    one may own them), pointer files half written, PostgreSQL tables half loaded."""
    found = []
    later = dt.datetime.now(dt.UTC) + converted.ATTEMPT_RETENTION
    for table in FACTS if day else []:
        folder = Path(layout.parquet_batch(str(root), table.name, day))
        current = converted.read(str(folder))
        converted.remove_stale_attempts(str(folder), {current.attempt} if current else set(), later)
        attempts = {p.name for p in folder.glob(f"{converted.ATTEMPT_PREFIX}*")}
        if current is None or current.attempt not in attempts or len(attempts) > converted.KEEP_ATTEMPTS:
            found.append(f"{folder}: attempts {sorted(attempts)}")
        found += [str(p) for p in folder.glob("*.tmp")]
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND (tablename LIKE %s OR tablename LIKE %s)",
            (schema, "%\\_\\_loading", "%\\_\\_replaced"),
        )
        found += [f"PostgreSQL table {schema}.{name}" for (name,) in cursor.fetchall()]
    connection.close()
    return found


@dataclass(frozen=True)
class Rerun:
    """How a killed run is made again: in this process (no runs), or as a `_wave` of `batch_job` runs."""

    runs: tuple[tuple[str, str], ...] = ()  # (day, "one" or "other" instance)
    stagger: bool = False


# The chain: each point killed in turn, then made again. Where two kills come before one re-run (the
# conversion and the Parquet publish), both dates are made again at once.
CHAIN: list[tuple[KillPoint, Rerun | None]] = [
    (KILL_POINTS[0], None),
    (KILL_POINTS[1], Rerun(((DAYS[1], "one"), (DAYS[2], "one")))),  # two dates at once
    (KILL_POINTS[2], Rerun(((DAYS[3], "one"), (DAYS[3], "one")))),  # one date twice at once
    (KILL_POINTS[3], Rerun(((DAYS[4], "one"), (DAYS[4], "one")), stagger=True)),  # the instance's pools
    (KILL_POINTS[4], Rerun(((DAYS[5], "one"), (DAYS[5], "other")), stagger=True)),  # no pool: the writers' guards
    (KILL_POINTS[5], Rerun()),
    (KILL_POINTS[6], Rerun()),
]


def _made_again(rerun: Rerun, point: KillPoint, defs, root: Path, url: str, schema: str, work: Path) -> None:
    if not rerun.runs:
        assert run_job(defs, point.job, point.day).success, point.name
        return
    homes = {"one": work / "dagster", "other": work / "dagster-other"}
    runs = [(day, homes[instance]) for day, instance in rerun.runs]
    children = _wave(runs, root, url, schema, work, rerun.stagger)
    for number, ((day, _), child) in enumerate(zip(runs, children)):
        assert child.wait(900) == 0, (work / f"worker-{day}-{number}" / "run.log").read_text()[-6000:]


@pytest.mark.slow
@pytest.mark.timeout(3000)  # seven runs killed, ten made again, after the baseline's
def test_runs_killed_anywhere_and_made_again_at_once_end_in_the_runs_one_after_another(
    one_after_another, sample_root, tmp_path, monkeypatch, postgres_url, pg_schema, spark
):
    """One chain over the snapshot and seven batches. Each point is killed in turn (SIGKILL to the run's process
    group): every table (migrated, aggregates, PostgreSQL) then reads whole, as before the run or as after it.
    Then the run is made again: in this process, or by runs at once (two dates; one date twice, started
    together, staggered in one instance, whose pools make the second wait, and staggered in two instances, with
    no pool between them: the writers' own guards hold). Every run succeeds, every table then equals the runs
    one after another, and nothing the killed run left remains."""
    baseline = one_after_another.after
    root = tmp_path / "root"
    defs = _started(monkeypatch, sample_root, root, postgres_url, pg_schema, DAYS[:1])
    for home in (tmp_path / "dagster", tmp_path / "dagster-other"):
        ensure_instance_settings(str(home))  # created once, as a deployment's instance is, before the runs
        dg.DagsterInstance.from_config(str(home)).dispose()
    pending: list[KillPoint] = []
    for number, (point, rerun) in enumerate(CHAIN):
        before = state(root, postgres_url, pg_schema)
        after = baseline[point.day or DAYS[-1]]
        _killed_run(point, root, postgres_url, pg_schema, tmp_path / f"killed-{number}")
        now = state(root, postgres_url, pg_schema)
        for key in now:
            assert now[key] in (before[key], after[key]), (point.name, key)
        pending.append(point)
        if rerun is None:
            continue
        _made_again(rerun, point, defs, root, postgres_url, pg_schema, tmp_path)
        assert state(root, postgres_url, pg_schema) == after, point.name
        for made in pending:
            assert _leftovers(root, postgres_url, pg_schema, made.day) == [], made.name
        pending.clear()
    for day in DAYS[3:6]:  # every batch converted twice at once: the pointer names the files of all its rows
        for table in FACTS:
            batch = converted.read(layout.parquet_batch(str(root), table.name, day))
            assert batch.files and all(Path(uri).exists() for uri in batch.uris), (table.name, day)

    # what the runs killed wrote, no snapshot references: once ORPHAN_AGE has passed (the files are aged here),
    # Iceberg's orphan sweep finds it, and removing it changes no table
    aged = time.time() - ORPHAN_AGE.total_seconds() - 3600
    for path in (root / "warehouse").rglob("*"):
        os.utime(path, (aged, aged))
    data = DataRoot(str(root))
    identifiers = [data.migrated_table(spark, t) for t in TABLES] + [data.aggregate_table(spark, a) for a in AGGREGATES]
    older_than = dt.datetime.now(dt.UTC) - ORPHAN_AGE
    removed = [f for i in identifiers for f in remove_orphan_files(spark, i, older_than)]
    assert any("/migrated/" in f for f in removed), removed
    assert any("/aggregates/agg_hourly_space/data/" in f for f in removed), removed  # the killed write's files
    assert state(root, postgres_url, pg_schema) == baseline[DAYS[-1]]


def test_a_14_day_range_run_equals_seven_single_runs_then_a_range(one_after_another, loaded, postgres_url):
    """What a single-run backfill of the 14-day sample does (`loaded`: one run, one Spark application) against
    its first seven days as single runs, one after another, and its last seven as one range run after them."""
    ranged, ranged_schema, _ = loaded
    daily, daily_schema = one_after_another.root, one_after_another.schema
    tables = [("migrated", "fact_event_by_day"), ("migrated", "fact_attendance")]
    tables += [("aggregates", a) for a in AGGREGATES]
    for database, name in tables:
        a = sorted_rows(iceberg_rows(ranged, database, name))
        b = sorted_rows(iceberg_rows(daily, database, name))
        assert len(a) > 0 and a == b, name
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        for table in ("fact_event_by_day", "fact_attendance", *AGGREGATES):
            counts = []
            for schema in (ranged_schema, daily_schema):
                cursor.execute(f'SELECT count(*), sum(hashtext(t::text)) FROM "{schema}"."{table}" t')
                counts.append(cursor.fetchone())
            assert counts[0] == counts[1] and counts[0][0] > 0, table
    connection.close()
