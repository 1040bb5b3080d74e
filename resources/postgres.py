"""PostgreSQL: a configured server (TEEM_POSTGRES_URL, or host/port/user/database with the password from the
environment), else the project's own embedded server in the local state directory (the `pgserver` package).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg2
import psycopg2.extensions
from pydantic import PrivateAttr

from teem_assets.postgres_urls import PostgresSettingError, encoded_url, server_of
from teem_assets.settings import Settings, is_set

__all__ = ["PostgresResource", "PostgresSettingError", "PostgresUnavailable", "encoded_url", "server_of"]


class PostgresUnavailable(Exception):
    """No connection to the server; the message names the server, never the password."""


# What a server says when the settings themselves are wrong: trying again cannot help.
PERMANENT = (
    "password authentication failed",
    "does not exist",  # the role or the database
    "no pg_hba.conf entry",
    "no password supplied",
    "permission denied",
)
# How often the server looks, while it runs a statement, whether the run that sent it is still there: a run
# killed mid-statement (SIGKILL, a lost worker) would otherwise leave its statement running to the end, its
# locks held against the next run and its CPU taken from it (PostgreSQL 14's client_connection_check_interval).
CLIENT_CHECK_MS = 2000


def _embedded_uri(folder: str) -> str:
    import pgserver

    Path(folder).mkdir(parents=True, exist_ok=True)  # a fresh worker's TEEM_HOME may not exist yet
    return pgserver.get_server(folder).get_uri()


def _env(name: str) -> dg.EnvVar | None:
    """A setting present in the environment, as a field the launchpad shows by its variable's name."""
    return dg.EnvVar(name) if is_set(name) else None


class PostgresResource(dg.ConfigurableResource):
    """A connection factory. `url` wins; else host etc.; with neither, the embedded server is started."""

    url: str | None = None
    host: str | None = None
    port: int = 5432
    user: str | None = None
    database: str | None = None
    password: str | None = None  # give it as dg.EnvVar("…"), never as a literal
    schema_name: str = "teem"
    # How long a statement waits for a lock before it fails naming the sessions that hold it (a load waits for
    # other writers of its table, never for readers).
    lock_timeout_seconds: float = 60.0
    # A machine without a server starts the embedded one (TEEM_ENV=local) in this folder; production names
    # its server.
    embedded_allowed: bool = True
    embedded_folder: str = ".teem/postgres"  # <TEEM_HOME>/postgres

    _resolved: str | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings, embedded_allowed: bool = True) -> PostgresResource:
        """TEEM_POSTGRES_URL, or TEEM_PG_HOST/PORT/USER/DATABASE and TEEM_PG_PASSWORD; TEEM_PG_SCHEMA. The URL
        and the password stay variables: Dagster resolves them when a run starts."""
        return cls(
            url=dg.EnvVar("TEEM_POSTGRES_URL") if settings.postgres_url_set else None,
            host=_env("TEEM_PG_HOST"),
            port=settings.pg_port,
            user=_env("TEEM_PG_USER"),
            database=_env("TEEM_PG_DATABASE"),
            password=dg.EnvVar("TEEM_PG_PASSWORD") if settings.pg_password_set else None,
            schema_name=settings.postgres_schema,
            lock_timeout_seconds=settings.pg_lock_timeout_seconds,
            embedded_allowed=embedded_allowed,
            embedded_folder=str(settings.home / "postgres"),
        )

    def _dsn(self) -> str:
        if self._resolved is None:
            if self.url:
                self._resolved = encoded_url(self.url)
            elif self.host:
                self._resolved = psycopg2.extensions.make_dsn(
                    host=self.host, port=self.port, user=self.user, dbname=self.database, password=self.password
                )
            elif self.embedded_allowed:
                self._resolved = _embedded_uri(self.embedded_folder)
            else:  # a setting, not an outage: trying again cannot help
                raise dg.Failure(
                    description="no PostgreSQL server is set: TEEM_POSTGRES_URL or TEEM_PG_HOST (TEEM_ENV=aws "
                    "never starts the embedded server)",
                    allow_retries=False,
                )
        return self._resolved

    def server(self) -> str:
        """Where the server is, for messages: host and port (or socket folder) and database, no secrets."""
        return server_of(self._dsn())

    def connect(self) -> psycopg2.extensions.connection:
        """A connection; a server that refuses or restarts raises PostgresUnavailable (the step's retry policy
        tries again), settings that cannot work raise a Failure that is not retried and says what to fix."""
        try:
            dsn = self._dsn()
        except PostgresSettingError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        try:
            return psycopg2.connect(
                dsn,
                connect_timeout=10,
                application_name="teem-pipelines",
                options=f"-c lock_timeout={max(1, round(self.lock_timeout_seconds * 1000))} "
                f"-c client_connection_check_interval={CLIENT_CHECK_MS}",
            )
        except psycopg2.OperationalError as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            message = f"cannot connect to PostgreSQL at {self.server()}: {reason}"
            if any(sign in reason for sign in PERMANENT):
                raise dg.Failure(
                    description=f"{message}. Not retried: fix the server's settings (TEEM_POSTGRES_URL, or "
                    "TEEM_PG_HOST, TEEM_PG_USER, TEEM_PG_DATABASE and TEEM_PG_PASSWORD) and run again.",
                    allow_retries=False,
                ) from None
            raise PostgresUnavailable(message) from None
