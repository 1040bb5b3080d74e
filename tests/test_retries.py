"""Transient failures are retried, permanent ones are not: a PostgreSQL that refuses the first connection (a
restart) is tried again by the step's retry policy and the run completes with every table exact once; settings
that cannot work (a database that does not exist) fail at once, not retried, saying what to fix."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg2
import pytest
from dagster_helpers import definitions, run_job
from servers import free_port

from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=7)
DAY = SPEC.batch_dates[0].isoformat()


class RefusingProxy:
    """A TCP front of the test's PostgreSQL that hangs up on its first `refuse` connections, then forwards."""

    def __init__(self, postgres_url: str, refuse: int) -> None:
        self.url, self.refuse, self.refused = urlparse(postgres_url), refuse, 0
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def front_url(self) -> str:
        user = self.url.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}{self.url.path or '/postgres'}"

    def _upstream(self) -> socket.socket:
        socket_folder = parse_qs(self.url.query).get("host", [None])[0]
        if socket_folder:  # the embedded server listens on a Unix socket
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{socket_folder}/.s.PGSQL.{self.url.port or 5432}")
            return upstream
        return socket.create_connection((self.url.hostname, self.url.port or 5432))

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refused < self.refuse:
                self.refused += 1
                client.close()  # as a server going down for a restart does
                continue
            upstream = self._upstream()
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[RefusingProxy]:
    front = RefusingProxy(postgres_url, refuse=1)
    yield front
    front.close()


def _steps(result, event_type: str) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == event_type]


def test_a_postgres_restart_is_retried_and_the_run_completes_exactly(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, proxy: RefusingProxy
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
    result = run_job(defs, "migration_job", DAY, DAY, raise_on_error=False)
    assert not result.success
    assert _steps(result, "STEP_UP_FOR_RETRY") == []
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all(f.step_key.startswith("postgres_") for f in failures)
    message = str(failures[0].event_specific_data.error)
    assert "teem_no_such_database" in message and "does not exist" in message
    assert "Not retried: fix the server's settings (TEEM_POSTGRES_URL" in message
