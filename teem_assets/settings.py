"""Every setting of teem-pipelines, read from the environment in one place into one typed object (README,
"Settings"). A value that cannot work is refused with a `SettingError` naming its variable and what it must be.

Secrets (TEEM_PG_PASSWORD, TEEM_SMTP_PASSWORD, TEEM_SLACK_TOKEN, the password inside TEEM_POSTGRES_URL) are never
held here: resources get them as `dg.EnvVar` fields, resolved by Dagster when a run starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teem_assets.layout import default_databases
from teem_assets.postgres_urls import server_of

ENVIRONMENTS = ("local", "aws")
SECRET_VARIABLES = ("TEEM_POSTGRES_URL", "TEEM_PG_PASSWORD", "TEEM_SMTP_PASSWORD", "TEEM_SLACK_TOKEN")
# What a spark-submitted stage inherits from this process besides its Pipes variables: tools, paths and AWS's
# default chain. Nothing else (no project secret) crosses.
STAGE_ENVIRONMENT_PREFIXES = ("AWS_", "JAVA_", "SPARK_", "PYSPARK_", "HADOOP_", "LC_")
STAGE_ENVIRONMENT_NAMES = ("PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "TEEM_HOME")


class SettingError(ValueError):
    """A setting that cannot work; the message names the variable and what it must be."""


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _number(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    whole: bool = False,
) -> Any:
    text = _text(environ, name)
    if text is None:
        return default
    kind = "a whole number" if whole else "a number"
    try:
        value: float = int(text) if whole else float(text)
    except ValueError:
        raise SettingError(f"{name} is {text!r}: {kind}") from None
    bounds = [
        *([f"above {above:g}"] if above is not None else []),
        *([f"at least {at_least:g}"] if at_least is not None else []),
        *([f"at most {at_most:g}"] if at_most is not None else []),
    ]
    if (
        value != value  # NaN
        or (above is not None and value <= above)
        or (at_least is not None and value < at_least)
        or (at_most is not None and value > at_most)
    ):
        raise SettingError(f"{name} is {text!r}: {kind} {' and '.join(bounds)}")
    return value


def _json(environ: Mapping[str, str], name: str, kind: type) -> Any:
    text = _text(environ, name)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingError(f"{name} is not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, kind):
        raise SettingError(f"{name} is JSON, but not a JSON {'object' if kind is dict else 'array'}")
    return value


def _rates(environ: Mapping[str, str], name: str) -> dict[str, float] | None:
    rates = _json(environ, name, dict)
    for key, value in (rates or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SettingError(f"{name}: the rate of {key!r} is {value!r}, not USD an hour (a number)")
    return rates


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _text(environ, name) or default
    if value not in choices:
        raise SettingError(f"{name} is {value!r}: one of {', '.join(choices)}")
    return value


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    text = _text(environ, name)
    if text is None:
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise SettingError(f"{name} is {text!r}: true or false")


def _postgres_server(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return server_of(url)
    except Exception:  # psycopg2's and urllib's messages quote the text they could not read
        raise SettingError(
            "TEEM_POSTGRES_URL is not a postgresql://user:password@host:port/database URL (its value is not shown)"
        ) from None


def _date(environ: Mapping[str, str], name: str, default: str) -> str:
    text = _text(environ, name) or default
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise SettingError(f"{name} is {text!r}: a date, YYYY-MM-DD") from None


# TEEM_SPARK=auto: a run whose unloads are smaller runs its Spark in its own process
SPARK_AUTO_MAX_BYTES = 4 * 1024**3

# EmrResource's fields, the variables that set them and how each is read (README, "Running on AWS").
EMR_VARIABLES: dict[str, tuple[str, Callable[[Mapping[str, str], str], Any]]] = {
    "release_label": ("TEEM_EMR_RELEASE_LABEL", _text),
    "untested_release": ("TEEM_EMR_UNTESTED_RELEASE", lambda e, n: _switch(e, n, False) or None),
    "master_instance_type": ("TEEM_EMR_MASTER_INSTANCE_TYPE", _text),
    "core_instance_type": ("TEEM_EMR_CORE_INSTANCE_TYPE", _text),
    "core_instance_count": ("TEEM_EMR_CORE_INSTANCE_COUNT", lambda e, n: _number(e, n, None, at_least=1, whole=True)),
    "subnet_id": ("TEEM_EMR_SUBNET_ID", _text),
    "service_role": ("TEEM_EMR_SERVICE_ROLE", _text),
    "instance_profile": ("TEEM_EMR_INSTANCE_PROFILE", _text),
    "log_uri": ("TEEM_EMR_LOG_URI", _text),
    "archive_uri": ("TEEM_EMR_ARCHIVE_URI", _text),
    "messages_bucket": ("TEEM_EMR_MESSAGES_BUCKET", _text),
    "poll_seconds": ("TEEM_EMR_POLL_SECONDS", lambda e, n: _number(e, n, None, above=0)),
    "stderr_wait_seconds": ("TEEM_EMR_STDERR_WAIT_SECONDS", lambda e, n: _number(e, n, None, at_least=0)),
    # EMR's AutoTerminationPolicy takes 60 s to 7 days
    "idle_timeout_seconds": (
        "TEEM_EMR_IDLE_TIMEOUT_SECONDS",
        lambda e, n: _number(e, n, None, at_least=60, at_most=604800, whole=True),
    ),
    "tags": ("TEEM_EMR_TAGS", lambda e, n: _json(e, n, dict)),
    "bootstrap_actions": ("TEEM_EMR_BOOTSTRAP_ACTIONS", lambda e, n: _json(e, n, list)),
    "spark_conf": ("TEEM_EMR_SPARK_CONF", lambda e, n: _json(e, n, dict)),
    "hourly_rates": ("TEEM_EMR_HOURLY_RATES", lambda e, n: _rates(e, n)),
    "iceberg_conf": ("TEEM_EMR_ICEBERG_CONF", lambda e, n: _json(e, n, dict)),
}

# EmrServerlessResource's fields, likewise (README, "EMR Serverless").
SERVERLESS_VARIABLES: dict[str, tuple[str, Callable[[Mapping[str, str], str], Any]]] = {
    "application_name": ("TEEM_EMR_SERVERLESS_APPLICATION", _text),
    "release_label": ("TEEM_EMR_SERVERLESS_RELEASE_LABEL", _text),
    "untested_release": ("TEEM_EMR_SERVERLESS_UNTESTED_RELEASE", lambda e, n: _switch(e, n, False) or None),
    "execution_role_arn": ("TEEM_EMR_SERVERLESS_EXECUTION_ROLE_ARN", _text),
    "initial_capacity": ("TEEM_EMR_SERVERLESS_INITIAL_CAPACITY", lambda e, n: _json(e, n, dict)),
    "maximum_capacity": ("TEEM_EMR_SERVERLESS_MAXIMUM_CAPACITY", lambda e, n: _json(e, n, dict)),
    "idle_stop_minutes": (
        "TEEM_EMR_SERVERLESS_IDLE_STOP_MINUTES",
        lambda e, n: _number(e, n, None, at_least=1, at_most=10080, whole=True),
    ),
    "archive_uri": ("TEEM_EMR_SERVERLESS_ARCHIVE_URI", _text),
    "log_uri": ("TEEM_EMR_SERVERLESS_LOG_URI", _text),
    "spark_conf": ("TEEM_EMR_SERVERLESS_SPARK_CONF", lambda e, n: _json(e, n, dict)),
    "poll_seconds": ("TEEM_EMR_SERVERLESS_POLL_SECONDS", lambda e, n: _number(e, n, None, above=0)),
    "stderr_wait_seconds": ("TEEM_EMR_SERVERLESS_STDERR_WAIT_SECONDS", lambda e, n: _number(e, n, None, at_least=0)),
    "rates": ("TEEM_EMR_SERVERLESS_RATES", lambda e, n: _rates(e, n)),
}


@dataclass(frozen=True)
class Settings:
    """The values of every setting; `from_env` reads and checks them, tests build one directly."""

    environment: str = "local"  # TEEM_ENV
    home: Path = field(default_factory=lambda: (Path.cwd() / ".teem").resolve())  # TEEM_HOME
    root: str = ""  # TEEM_ROOT; empty: <home>/root
    dagster_home: Path | None = None  # DAGSTER_HOME; None: <home>/dagster
    spark: str | None = None  # TEEM_SPARK
    spark_auto_max_bytes: int = SPARK_AUTO_MAX_BYTES  # TEEM_SPARK_AUTO_MAX_BYTES
    spark_auto_cluster: str = "emr"  # TEEM_SPARK_AUTO_CLUSTER
    spark_messages_bucket: str | None = None  # TEEM_SPARK_MESSAGES_BUCKET
    first_batch_date: str = "2019-09-01"  # TEEM_FIRST_BATCH_DATE
    migrated_database: str = ""  # TEEM_MIGRATED_DATABASE; empty: the root's own (layout.default_databases)
    aggregates_database: str = ""  # TEEM_AGGREGATES_DATABASE; likewise
    postgres_schema: str = "teem"  # TEEM_PG_SCHEMA
    # the checks' thresholds (defaults of the `thresholds` resource, which the launchpad can override)
    volume_threshold: float = 0.95  # TEEM_VOLUME_THRESHOLD
    trailing_weeks: int = 4  # TEEM_TRAILING_WEEKS
    trailing_batches: int = 7  # TEEM_TRAILING_BATCHES
    snapshot_shrink_threshold: float = 0.9  # TEEM_SNAPSHOT_SHRINK_THRESHOLD
    freshness_max_age_hours: float = 48.0  # TEEM_FRESHNESS_MAX_AGE_HOURS
    # sensors and runs
    unload_settle_seconds: float = 600.0  # TEEM_UNLOAD_SETTLE_SECONDS
    sensor_interval_seconds: int = 30  # TEEM_SENSOR_INTERVAL_SECONDS
    sweep_hours: float = 24.0  # TEEM_SENSOR_SWEEP_HOURS
    run_heartbeat_timeout_seconds: float = 300.0  # TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS
    max_runtime_seconds: int = 21600  # TEEM_MAX_RUNTIME_SECONDS
    webserver_url: str = "http://127.0.0.1:3000"  # TEEM_WEBSERVER_URL
    code_url: str | None = None  # TEEM_CODE_URL: the repository the UI's code links point into
    code_branch: str = "main"  # TEEM_CODE_BRANCH
    # table upkeep
    snapshot_retention_days: float = 7.0  # TEEM_SNAPSHOT_RETENTION_DAYS
    orphan_sweep_days: float = 7.0  # TEEM_ORPHAN_SWEEP_DAYS
    staged_retention_days: float = 7.0  # TEEM_STAGED_RETENTION_DAYS
    quarantine_retention_days: float = 30.0  # TEEM_QUARANTINE_RETENTION_DAYS
    maintenance_small_file_mb: float = 32.0  # TEEM_MAINTENANCE_SMALL_FILE_MB
    maintenance_small_files: int = 2  # TEEM_MAINTENANCE_SMALL_FILES
    maintenance_manifests: int = 32  # TEEM_MAINTENANCE_MANIFESTS
    # AWS's own variables, as its SDKs read them
    aws_endpoint_url: str | None = None  # AWS_ENDPOINT_URL: every service's, unless its own is set
    s3_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_S3
    glue_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_GLUE
    emr_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_EMR
    emr_serverless_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_EMR_SERVERLESS
    aws_region: str | None = None  # AWS_REGION, else AWS_DEFAULT_REGION
    # PostgreSQL (the password only ever as the variable's name)
    postgres_url_set: bool = False  # TEEM_POSTGRES_URL
    postgres_server: str | None = None  # host:port/database of TEEM_POSTGRES_URL, never its user or password
    pg_host: str | None = None  # TEEM_PG_HOST
    pg_port: int = 5432  # TEEM_PG_PORT
    pg_lock_timeout_seconds: float = 60.0  # TEEM_PG_LOCK_TIMEOUT_SECONDS
    pg_user: str | None = None  # TEEM_PG_USER
    pg_database: str | None = None  # TEEM_PG_DATABASE
    pg_password_set: bool = False  # TEEM_PG_PASSWORD
    # alerts
    smtp_host: str | None = None  # TEEM_SMTP_HOST
    smtp_port: int = 587  # TEEM_SMTP_PORT
    smtp_user: str | None = None  # TEEM_SMTP_USER
    smtp_password_set: bool = False  # TEEM_SMTP_PASSWORD
    smtp_starttls: bool = True  # TEEM_SMTP_STARTTLS
    smtp_ca_file: str | None = None  # TEEM_SMTP_CA_FILE
    alert_email_from: str = "teem-pipelines@localhost"  # TEEM_ALERT_EMAIL_FROM
    alert_email_to: tuple[str, ...] = ()  # TEEM_ALERT_EMAIL_TO, comma-separated
    slack_token_set: bool = False  # TEEM_SLACK_TOKEN
    slack_channel: str = "#teem-alerts"  # TEEM_SLACK_CHANNEL
    slack_api_url: str | None = None  # TEEM_SLACK_API_URL
    emr: dict[str, Any] = field(default_factory=dict)  # TEEM_EMR_*: EmrResource's fields that are set
    emr_serverless: dict[str, Any] = field(default_factory=dict)  # TEEM_EMR_SERVERLESS_*: likewise

    def __post_init__(self) -> None:
        if not self.root:
            object.__setattr__(self, "root", str(self.home / "root"))
        if self.dagster_home is None:
            object.__setattr__(self, "dagster_home", self.home / "dagster")
        migrated, aggregates = default_databases(self.root)
        object.__setattr__(self, "migrated_database", self.migrated_database or migrated)
        object.__setattr__(self, "aggregates_database", self.aggregates_database or aggregates)

    @property
    def sweep_interval(self) -> dt.timedelta:
        return dt.timedelta(hours=self.sweep_hours)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of `environ` (this process's environment by default); a bad value raises SettingError."""
        env = os.environ if environ is None else environ
        home = Path(_text(env, "TEEM_HOME") or Path.cwd() / ".teem").resolve()
        dagster_home = _text(env, "DAGSTER_HOME")
        max_runtime = _number(env, "TEEM_MAX_RUNTIME_SECONDS", 21600, above=0, whole=True)
        emr = {key: parse(env, name) for key, (name, parse) in EMR_VARIABLES.items()}
        serverless = {key: parse(env, name) for key, (name, parse) in SERVERLESS_VARIABLES.items()}
        return cls(
            environment=_choice(env, "TEEM_ENV", "local", ENVIRONMENTS),
            home=home,
            root=_text(env, "TEEM_ROOT") or "",
            dagster_home=Path(dagster_home).resolve() if dagster_home else None,
            spark=_text(env, "TEEM_SPARK"),
            spark_auto_max_bytes=_number(
                env, "TEEM_SPARK_AUTO_MAX_BYTES", SPARK_AUTO_MAX_BYTES, at_least=0, whole=True
            ),
            spark_auto_cluster=_text(env, "TEEM_SPARK_AUTO_CLUSTER") or "emr",
            spark_messages_bucket=_text(env, "TEEM_SPARK_MESSAGES_BUCKET"),
            first_batch_date=_date(env, "TEEM_FIRST_BATCH_DATE", "2019-09-01"),
            migrated_database=_text(env, "TEEM_MIGRATED_DATABASE") or "",
            aggregates_database=_text(env, "TEEM_AGGREGATES_DATABASE") or "",
            postgres_schema=_text(env, "TEEM_PG_SCHEMA") or "teem",
            volume_threshold=_number(env, "TEEM_VOLUME_THRESHOLD", 0.95, above=0, at_most=1),
            trailing_weeks=_number(env, "TEEM_TRAILING_WEEKS", 4, at_least=1, whole=True),
            trailing_batches=_number(env, "TEEM_TRAILING_BATCHES", 7, at_least=1, whole=True),
            snapshot_shrink_threshold=_number(env, "TEEM_SNAPSHOT_SHRINK_THRESHOLD", 0.9, above=0, at_most=1),
            freshness_max_age_hours=_number(env, "TEEM_FRESHNESS_MAX_AGE_HOURS", 48.0, above=0),
            unload_settle_seconds=_number(env, "TEEM_UNLOAD_SETTLE_SECONDS", 600.0, at_least=0),
            sensor_interval_seconds=_number(env, "TEEM_SENSOR_INTERVAL_SECONDS", 30, at_least=1, whole=True),
            sweep_hours=_number(env, "TEEM_SENSOR_SWEEP_HOURS", 24.0, at_least=0),
            run_heartbeat_timeout_seconds=_number(env, "TEEM_RUN_HEARTBEAT_TIMEOUT_SECONDS", 300.0, above=0),
            max_runtime_seconds=max_runtime,
            webserver_url=(_text(env, "TEEM_WEBSERVER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            code_url=(_text(env, "TEEM_CODE_URL") or "").rstrip("/") or None,
            code_branch=_text(env, "TEEM_CODE_BRANCH") or "main",
            # A reader may hold a snapshot for as long as a run may last: expiring it sooner breaks that read.
            snapshot_retention_days=_number(
                env, "TEEM_SNAPSHOT_RETENTION_DAYS", 7.0, at_least=round(max_runtime / 86400, 4)
            ),
            orphan_sweep_days=_number(env, "TEEM_ORPHAN_SWEEP_DAYS", 7.0, above=0),
            staged_retention_days=_number(env, "TEEM_STAGED_RETENTION_DAYS", 7.0, above=0),
            quarantine_retention_days=_number(env, "TEEM_QUARANTINE_RETENTION_DAYS", 30.0, above=0),
            maintenance_small_file_mb=_number(env, "TEEM_MAINTENANCE_SMALL_FILE_MB", 32.0, above=0),
            maintenance_small_files=_number(env, "TEEM_MAINTENANCE_SMALL_FILES", 2, at_least=2, whole=True),
            maintenance_manifests=_number(env, "TEEM_MAINTENANCE_MANIFESTS", 32, at_least=0, whole=True),
            aws_endpoint_url=_text(env, "AWS_ENDPOINT_URL"),
            s3_endpoint_url=_text(env, "AWS_ENDPOINT_URL_S3"),
            glue_endpoint_url=_text(env, "AWS_ENDPOINT_URL_GLUE"),
            emr_endpoint_url=_text(env, "AWS_ENDPOINT_URL_EMR"),
            emr_serverless_endpoint_url=_text(env, "AWS_ENDPOINT_URL_EMR_SERVERLESS"),
            aws_region=_text(env, "AWS_REGION") or _text(env, "AWS_DEFAULT_REGION"),
            postgres_url_set=_text(env, "TEEM_POSTGRES_URL") is not None,
            postgres_server=_postgres_server(_text(env, "TEEM_POSTGRES_URL")),
            pg_host=_text(env, "TEEM_PG_HOST"),
            pg_port=_number(env, "TEEM_PG_PORT", 5432, at_least=1, at_most=65535, whole=True),
            pg_lock_timeout_seconds=_number(env, "TEEM_PG_LOCK_TIMEOUT_SECONDS", 60.0, above=0),
            pg_user=_text(env, "TEEM_PG_USER"),
            pg_database=_text(env, "TEEM_PG_DATABASE"),
            pg_password_set=_text(env, "TEEM_PG_PASSWORD") is not None,
            smtp_host=_text(env, "TEEM_SMTP_HOST"),
            smtp_port=_number(env, "TEEM_SMTP_PORT", 587, at_least=1, at_most=65535, whole=True),
            smtp_user=_text(env, "TEEM_SMTP_USER"),
            smtp_password_set=_text(env, "TEEM_SMTP_PASSWORD") is not None,
            smtp_starttls=_switch(env, "TEEM_SMTP_STARTTLS", True),
            smtp_ca_file=_text(env, "TEEM_SMTP_CA_FILE"),
            alert_email_from=_text(env, "TEEM_ALERT_EMAIL_FROM") or "teem-pipelines@localhost",
            alert_email_to=tuple(a.strip() for a in env.get("TEEM_ALERT_EMAIL_TO", "").split(",") if a.strip()),
            slack_token_set=_text(env, "TEEM_SLACK_TOKEN") is not None,
            slack_channel=_text(env, "TEEM_SLACK_CHANNEL") or "#teem-alerts",
            slack_api_url=_text(env, "TEEM_SLACK_API_URL"),
            emr={key: value for key, value in emr.items() if value is not None},
            emr_serverless={key: value for key, value in serverless.items() if value is not None},
        )


def load() -> Settings:
    """This process's settings, read now (a test's monkeypatched environment is seen)."""
    return Settings.from_env()


def adopt_for_this_command(variable: str, value: str) -> None:
    """Set a variable for the rest of this process. Only the `teem` command calls it, from its own entry point and
    before anything else runs: a command-line option (`--root`) then means what the variable would."""
    os.environ[variable] = value


def stage_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a spark-submitted stage: what STAGE_ENVIRONMENT_* let through, then `extra`."""
    passed = {
        name: value
        for name, value in os.environ.items()
        if name in STAGE_ENVIRONMENT_NAMES or name.startswith(STAGE_ENVIRONMENT_PREFIXES)
    }
    return {**passed, **extra}


def is_set(name: str) -> bool:
    """Whether a variable is set (not blank): a resource field then names it as `dg.EnvVar`, which Dagster
    resolves when a run starts."""
    return _text(os.environ, name) is not None
