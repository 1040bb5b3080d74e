"""Transient failures are retried, permanent ones are not: a PostgreSQL that refuses the first connection (a
restart) is tried again by the step's retry policy and the run completes with every table exact once; settings
that cannot work (a database that does not exist) fail at once, not retried, saying what to fix."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import psycopg2
import pytest
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry
from dagster_helpers import definitions, run_job
from pg_proxy import PostgresProxy

from teem_assets.runner import ensure_instance_settings
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=7)
DAY = SPEC.batch_dates[0].isoformat()


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[PostgresProxy]:
    front = PostgresProxy(postgres_url, refuse=1)
    yield front
    front.close()


def _steps(result, event_type: str) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == event_type]


def test_a_postgres_restart_is_retried_and_the_run_completes_exactly(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, proxy: PostgresProxy
) -> None:
    generate_sample(str(tmp_path), SPEC, UnloadOptions())
    defs = definitions(monkeypatch, tmp_path, proxy.front_url(), pg_schema)
    result = run_job(defs, "migration_job", DAY, DAY)  # raises, naming the checks, unless every one passed
    assert proxy.refused == 1
    assert len(_steps(result, "STEP_UP_FOR_RETRY")) == 1  # the first step to connect, once
    [retried] = _steps(result, "STEP_UP_FOR_RETRY")
    assert retried.startswith("postgres_")
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.check_name == "matches_migrated")
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*), count(DISTINCT event_by_day_pk) FROM "{pg_schema}".fact_event_by_day')
        total, distinct = cursor.fetchone()
    connection.close()
    assert total == distinct > 0  # loaded once: no duplicate of a retried load


def test_settings_that_cannot_work_fail_at_once_and_say_what_to_fix(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark
) -> None:
    generate_sample(str(tmp_path), SPEC, UnloadOptions())
    missing = urlparse(postgres_url)._replace(path="/teem_no_such_database").geturl()
    defs = definitions(monkeypatch, tmp_path, missing, pg_schema)
    home = tmp_path / "dagster"
    ensure_instance_settings(str(home))  # the instance a deployment gets: its run retries
    instance = dg.DagsterInstance.from_config(str(home))
    result = run_job(defs, "migration_job", DAY, DAY, instance=instance, raise_on_error=False)
    assert not result.success
    assert _steps(result, "STEP_UP_FOR_RETRY") == []
    # nor is the run made again: run retries are for runs that failed outside their steps
    assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    # run monitoring frees the slots of runs that ended, and ends runs past their dagster/max_runtime
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
    assert int(defs.resolve_job_def("migration_job").run_tags["dagster/max_runtime"]) == 6 * 3600
    failed = instance.get_run_by_id(result.run_id)
    assert failed.tags.get("dagster/will_retry") == "false" and not should_retry(failed, instance)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all(f.step_key.startswith("postgres_") for f in failures)
    message = str(failures[0].event_specific_data.error)
    assert "teem_no_such_database" in message and "does not exist" in message
    assert "Not retried: fix the server's settings (TEEM_POSTGRES_URL" in message
