from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest
import requests
from dagster_helpers import run_job
from pyspark.sql import SparkSession
from servers import free_port, running, wait_for

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.spark_session import build_spark_session

# moto's credentials and region for the whole session, set before the test session's JVM starts (a JVM reads
# its environment once): the JVM's S3 and Glue clients find them through AWS's default chain.
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                      ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_REGION", "us-east-1")):  # fmt: skip
    os.environ.setdefault(_name, _value)

# The JIT of every Spark driver the suite starts (spark-submit reads SPARK_SUBMIT_OPTS), its children's included,
# and of their executors (a driver takes `spark.*` system properties as settings). The suite's JVMs are
# short-lived and their data small: C2's compilations cost more CPU than they ever save (measured: a single-day
# run in a fresh process, 94 CPU-seconds by default against 47 with C1 alone; a 14-day run and two days after it
# in one process, about 240 against 98). A bigger code cache, because C1's default (48 MB, sized for C2 doing the
# hot work) fills up and stops the compiler. Production keeps the JVM's default tiers: a JIT tier changes speed,
# never results. Not through a SPARK_CONF_DIR: a folder on the class path that is not empty keeps the driver from
# mapping its class archive (teem_assets/class_archive.py).
_C1_ONLY = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
os.environ.setdefault("SPARK_SUBMIT_OPTS", f'{_C1_ONLY} "-Dspark.executor.defaultJavaOptions={_C1_ONLY}"')

# The test process's zone as it started (dev.sh test: America/Los_Angeles unless TZ says otherwise).
STARTING_ZONE = (os.environ.get("TZ"), time.timezone, time.tzname)

SAMPLE_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)
# Small parts, so every table has `_part_01` splits, and gzip, as Redshift writes with GZIP.
SAMPLE_OPTIONS = UnloadOptions(slices=2, max_file_size=64 * 1024, gzip=True)
SAMPLE_DAYS = [d.isoformat() for d in SAMPLE_SPEC.batch_dates]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = build_spark_session("teem-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate_sample(str(root), SAMPLE_SPEC, SAMPLE_OPTIONS)
    return root


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TEEM_TEST_POSTGRES_URL, else the project's embedded server in a folder of the test session."""
    import os

    url = os.environ.get("TEEM_TEST_POSTGRES_URL")
    if url:
        return url
    import pgserver

    # one server for every worker of the session: pgserver counts the processes using it, the last one stops it
    return pgserver.get_server(shared_folder(tmp_path_factory) / "pgdata").get_uri()


@pytest.fixture
def pg_schema(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema of the test's own. It and every schema named after it (`<name>_daily`, …) are dropped before
    and after the test, so that a run killed half-way leaves nothing the next run would read."""
    name = schema_name(request.node.name)

    def drop_all() -> None:
        connection = psycopg2.connect(postgres_url)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (name,))
            for (schema,) in cursor.fetchall():
                cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
        connection.close()

    drop_all()
    yield name
    drop_all()


def schema_name(test: str) -> str:
    return "t_" + re.sub(r"\W", "_", test.lower())[:50]


def _schemas_apart(items: list[pytest.Item]) -> None:
    """The workers share one server, and `pg_schema` drops every schema its name begins: no test of one module
    may have a schema name that begins another module's."""
    owners = {schema_name(i.name): i for i in items if "pg_schema" in getattr(i, "fixturenames", ())}
    for name, item in owners.items():
        for other, owner in owners.items():
            if other != name and other.startswith(name) and owner.path != item.path:
                raise pytest.UsageError(f"{item.nodeid} would drop the schema of {owner.nodeid} ({other}): rename one")


@pytest.fixture(scope="session")
def loaded(sample_root, postgres_url, tmp_path_factory, spark):
    """The whole 14-day sample run through every layer into PostgreSQL, as `teem demo` does: once a session,
    by the first worker to ask for it, in a folder and schema every worker reads."""
    import shutil

    shared = shared_folder(tmp_path_factory)
    root = shared / "pipeline"
    schema = "t_pipeline"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEEM_ROOT", str(root))
        patch.setenv("TEEM_HOME", str(root / ".teem"))
        patch.setenv("TEEM_POSTGRES_URL", postgres_url)
        patch.setenv("TEEM_PG_SCHEMA", schema)
        from teem_assets.definitions import build_definitions

        defs = build_definitions()
        with exclusively(shared / "pipeline.lock"):
            if not (shared / "pipeline.done").exists():
                shutil.rmtree(root, ignore_errors=True)  # what a worker killed while building it left
                shutil.copytree(sample_root / "csv", root / "csv")
                connection = psycopg2.connect(postgres_url)
                with connection, connection.cursor() as cursor:  # what an earlier session left
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                connection.close()
                result = run_job(defs, "migration_job", SAMPLE_DAYS[0], SAMPLE_DAYS[-1])
                assert result.success
                evaluations = result.get_asset_check_evaluations()
                checked = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations if e.passed}
                assert {(f"postgres/{t}", "matches_migrated") for t in TABLES} <= checked
                assert {(f"aggregates/{a}", "matches_postgres_reference") for a in AGGREGATES} <= checked
                # + snapshot_not_shrunk x2, volume x2, companies, no_stale_parts and catalogue_rules for each table
                assert len(checked) == len(evaluations) == 4 * len(TABLES) + len(AGGREGATES) + 1
                (shared / "pipeline.done").touch()
        yield root, schema, defs  # the environment stays set: the resources read it at each run
    # the schema stays for the session's other workers; the next session's first worker drops it


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test session that all its pytest-xdist workers share (each has its own below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusively(lock: Path) -> Iterator[None]:
    """Holds `lock` (an advisory lock on a file) against the session's other workers."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on loopback, for the session."""
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@contextlib.contextmanager
def moto_server(folder: Path) -> Iterator[str]:
    """moto's server (every service) in a process of its own, so with a state of its own; its URL."""
    port = free_port()
    log = folder / "moto.log"
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with running(command, dict(os.environ), str(folder), str(log)):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url, timeout=2).ok, 60, "moto's server to start", interval=0.3)
        yield url


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str):
    """A client of the server with AWS's variables set, an empty bucket `teem` and an empty Glue catalog."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    client.create_bucket(Bucket="teem")
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="teem"):
        if page.get("Contents"):
            keys = [{"Key": item["Key"]} for item in page["Contents"]]
            client.delete_objects(Bucket="teem", Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket="teem")
    glue = boto3.client("glue")  # the tables the bucket's Iceberg files were registered as go with them
    for database in glue.get_databases()["DatabaseList"]:
        for table in glue.get_tables(DatabaseName=database["Name"])["TableList"]:
            glue.delete_table(DatabaseName=database["Name"], Name=table["Name"])
        glue.delete_database(Name=database["Name"])


# Slowest first, as .ci/run's "seconds per module" measured them: two workers (`-n 2 --dist loadfile`) take
# modules in this order, so the long ones start at once and the short ones fill in at the end.
SLOWEST_MODULES = (
    "test_concurrent_runs.py", "test_s3_glue.py", "test_production.py", "test_aggregate_scope.py",
    "test_dead_runs.py", "test_cli.py", "test_browser.py", "test_migration.py", "test_blocking_checks.py",
    "test_volume_range.py", "test_emr.py", "test_checks_and_alerts.py", "test_package.py", "test_aggregate_zones.py",
    "test_sensors.py", "test_snapshot_checks.py", "test_asset_graph.py", "test_aggregates.py", "test_postgres.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_MODULES.index(name) if name in SLOWEST_MODULES else len(SLOWEST_MODULES)

    _schemas_apart(items)
    items.sort(key=rank)


_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    """Seconds per test module (setup, call and teardown), slowest first: where DESIGN §10's budget goes."""
    terminalreporter.section("seconds per module")
    for module, seconds in sorted(_MODULE_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {module}")
    terminalreporter.write_line(f"{sum(_MODULE_SECONDS.values()):8.1f} s  in all")
