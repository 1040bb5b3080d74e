"""Bad input to the command line and to the settings: one line that says what to fix, exit code 2, no traceback,
and a setting's error names its variable. Run in-process through `teem`'s own entry point: the property is the
answer, not the process boundary (tests/test_cli.py runs the command as a user does)."""

from __future__ import annotations

from pathlib import Path

import psycopg2.extensions
import pytest

from resources.postgres import PostgresResource, PostgresUnavailable, encoded_url, server_of
from teem_assets import cli
from teem_assets.settings import SECRET_VARIABLES, SettingError, Settings, load


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh machine: an empty TEEM_HOME, no server or root set."""
    for name in ("TEEM_ROOT", "TEEM_POSTGRES_URL", "TEEM_PG_HOST", "DAGSTER_HOME", "TEEM_ENV", *SECRET_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEEM_HOME", str(tmp_path / "home"))
    return tmp_path


def _teem(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`teem ARGS`: its exit code and what it printed on stderr."""
    try:
        code = cli.main(list(args))
    except SystemExit as exit_:  # argparse's own refusals
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def _one_answer(err: str) -> str:
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("run", "--from", "2019-13-01", "--to", "2019-09-02"), "'2019-13-01' is not a date (YYYY-MM-DD)"),
        (("run", "--from", "2019-09-05", "--to", "2019-09-01"), "--to 2019-09-01 is before --from 2019-09-05"),
        (("run", "--from", "2030-01-01", "--to", "2030-01-02"), "no unload of any fact table for 2030-01-01.."),
        (("table", "fact_attendance"), "the Iceberg table migrated.fact_attendance does not exist"),
        (("table", "no_such_table"), "no table named no_such_table: one of dim_company"),
        (("table", "agg_hourly_space", "--layer", "parquet"), "agg_hourly_space is an aggregate"),
        (("table", "fact_attendance", "--layer", "aggregates"), "fact_attendance is a migrated table"),
        (("sample-unload", "--out", "x", "--days", "0"), "argument --days: '0': at least 1"),
        (("package", "--arch", "sparc"), "argument --arch: invalid choice: 'sparc'"),
    ],
)
def test_a_bad_command_line_gets_one_line_and_exit_2(home: Path, capsys, args: tuple[str, ...], says: str) -> None:
    code, err = _teem(capsys, *args)
    assert code == 2
    assert says in _one_answer(err)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TEEM_ENV", "prod", "TEEM_ENV is 'prod': one of local, aws"),
        ("TEEM_EMR_TAGS", '{"team": ', "TEEM_EMR_TAGS is not JSON"),
        ("TEEM_EMR_TAGS", '["a"]', "TEEM_EMR_TAGS is JSON, but not a JSON object"),
        ("TEEM_EMR_CORE_INSTANCE_COUNT", "two", "TEEM_EMR_CORE_INSTANCE_COUNT is 'two': a whole number"),
        ("TEEM_EMR_HOURLY_RATES", '{"m6i.xlarge": "0.24"}', "the rate of 'm6i.xlarge' is '0.24', not USD"),
        ("TEEM_EMR_IDLE_TIMEOUT_SECONDS", "30", "TEEM_EMR_IDLE_TIMEOUT_SECONDS is '30'"),
        ("TEEM_VOLUME_THRESHOLD", "ninety", "TEEM_VOLUME_THRESHOLD is 'ninety': a number"),
        ("TEEM_VOLUME_THRESHOLD", "0", "TEEM_VOLUME_THRESHOLD is '0': a number above 0 and at most 1"),
        ("TEEM_VOLUME_THRESHOLD", "1.5", "TEEM_VOLUME_THRESHOLD is '1.5': a number above 0 and at most 1"),
        ("TEEM_SNAPSHOT_SHRINK_THRESHOLD", "nan", "TEEM_SNAPSHOT_SHRINK_THRESHOLD is 'nan'"),
        ("TEEM_TRAILING_WEEKS", "0", "TEEM_TRAILING_WEEKS is '0': a whole number at least 1"),
        ("TEEM_SNAPSHOT_RETENTION_DAYS", "0", "TEEM_SNAPSHOT_RETENTION_DAYS is '0': a number at least 0.25"),
        ("TEEM_SNAPSHOT_RETENTION_DAYS", "-3", "TEEM_SNAPSHOT_RETENTION_DAYS is '-3'"),
        ("TEEM_PG_PORT", "5432x", "TEEM_PG_PORT is '5432x': a whole number"),
        ("TEEM_SMTP_STARTTLS", "maybe", "TEEM_SMTP_STARTTLS is 'maybe': true or false"),
        ("TEEM_FIRST_BATCH_DATE", "2019-9-1", "TEEM_FIRST_BATCH_DATE is '2019-9-1': a date, YYYY-MM-DD"),
    ],
)
def test_a_bad_setting_names_its_variable(home: Path, capsys, monkeypatch, variable: str, value: str, says: str):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError) as refused:
        Settings.from_env()
    assert says in str(refused.value)
    code, err = _teem(capsys, "runs")
    assert code == 2
    assert _one_answer(err) == f"teem: {refused.value}"


def test_the_retention_bound_follows_the_longest_run(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEEM_MAX_RUNTIME_SECONDS", str(2 * 86400))
    monkeypatch.setenv("TEEM_SNAPSHOT_RETENTION_DAYS", "1")
    with pytest.raises(SettingError, match="at least 2"):
        Settings.from_env()
    monkeypatch.setenv("TEEM_SNAPSHOT_RETENTION_DAYS", "2")
    assert Settings.from_env().snapshot_retention_days == 2.0


def test_an_unknown_postgres_role_fails_at_once_and_is_not_retried(home: Path, capsys, monkeypatch, postgres_url):
    parts = psycopg2.extensions.parse_dsn(postgres_url)
    wrong = psycopg2.extensions.make_dsn(**{**parts, "user": "no_such_role_here", "password": "pw-canary-1"})
    resource = PostgresResource(url=wrong)
    with pytest.raises(Exception) as refused:
        resource.connect()
    assert type(refused.value).__name__ == "Failure" and refused.value.allow_retries is False  # type: ignore[attr-defined]
    assert "no_such_role_here" in refused.value.description and "pw-canary-1" not in str(refused.value)  # type: ignore[attr-defined]
    monkeypatch.setenv("TEEM_POSTGRES_URL", wrong)
    code, err = _teem(capsys, "table", "fact_attendance", "--layer", "postgres")
    assert code == 2
    line = _one_answer(err)
    assert "Not retried: fix the server's settings" in line and "pw-canary-1" not in err


def test_a_wrong_postgres_password_fails_at_once_and_is_not_retried(home: Path, tmp_path: Path, capsys, monkeypatch):
    """A server of its own that asks for passwords (the shared one trusts every local connection)."""
    import pgserver

    with pgserver.get_server(tmp_path / "pgdata", cleanup_mode="delete") as server:
        server.psql("CREATE ROLE loader LOGIN PASSWORD 'the-right-one';")
        hba = Path(tmp_path / "pgdata" / "pg_hba.conf")
        hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        server.psql("SELECT pg_reload_conf();")
        parts = psycopg2.extensions.parse_dsn(server.get_uri())
        right = psycopg2.extensions.make_dsn(**{**parts, "user": "loader", "password": "the-right-one"})
        PostgresResource(url=right).connect().close()  # the server does take the right password
        wrong = psycopg2.extensions.make_dsn(**{**parts, "user": "loader", "password": "pw-canary-2"})
        with pytest.raises(Exception) as refused:
            PostgresResource(url=wrong).connect()
        assert type(refused.value).__name__ == "Failure" and refused.value.allow_retries is False  # type: ignore[attr-defined]
        assert "password authentication failed" in refused.value.description  # type: ignore[attr-defined]
        assert "pw-canary-2" not in str(refused.value) and "pw-canary-2" not in refused.value.description  # type: ignore[attr-defined]
        monkeypatch.setenv("TEEM_POSTGRES_URL", wrong)
        code, err = _teem(capsys, "table", "fact_attendance", "--layer", "postgres")
        assert code == 2
        line = _one_answer(err)
        assert "password authentication failed" in line and "Not retried" in line and "pw-canary-2" not in err


def test_aws_without_a_postgres_server_fails_at_once(home: Path) -> None:
    resource = PostgresResource.from_settings(Settings(environment="aws"), embedded_allowed=False)
    with pytest.raises(Exception) as refused:
        resource.connect()
    assert type(refused.value).__name__ == "Failure" and refused.value.allow_retries is False  # type: ignore[attr-defined]
    assert "no PostgreSQL server is set" in refused.value.description  # type: ignore[attr-defined]


PASSWORD = "Pa/ss#wo?rd@canary"  # every character a URL would take for the next part


def test_an_unencoded_password_in_the_url_is_read_right_and_never_shown(home: Path, monkeypatch) -> None:
    url = f"postgresql://loader:{PASSWORD}@db.internal:6432/analytics"
    parts = psycopg2.extensions.parse_dsn(encoded_url(url))
    assert (parts["user"], parts["password"], parts["host"], parts["port"], parts["dbname"]) == (
        "loader", PASSWORD, "db.internal", "6432", "analytics"
    )  # fmt: skip
    assert server_of(url) == "db.internal:6432/analytics"
    already_encoded = "postgresql://loader:Pa%2Fss%23wo%3Frd%40canary@db.internal:6432/analytics"
    assert psycopg2.extensions.parse_dsn(encoded_url(already_encoded))["password"] == PASSWORD

    monkeypatch.setenv("TEEM_POSTGRES_URL", url.replace("db.internal:6432", "127.0.0.1:1"))  # nothing listens
    from teem_assets.definitions import build_definitions

    defs = build_definitions()
    for spec in defs.resolve_all_asset_specs():
        assert "canary" not in repr(spec.metadata), spec.key
    resource = PostgresResource.from_settings(load()).process_config_and_initialize()
    with pytest.raises(PostgresUnavailable) as unavailable:
        resource.connect()
    assert "127.0.0.1:1/analytics" in str(unavailable.value)
    assert not any(piece in str(unavailable.value) for piece in ("Pa", "ss", "wo?rd", "canary"))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://loader:Pa/ss#wo?rd@canary@db:port/x",
        "host=db password='Pa/ss#wo?rd@canary",
        "mysql://u:canary@db/x",
    ],
)
def test_a_url_that_cannot_be_read_is_refused_without_quoting_it(home: Path, capsys, monkeypatch, url: str) -> None:
    monkeypatch.setenv("TEEM_POSTGRES_URL", url)
    code, err = _teem(capsys, "runs")
    assert code == 2
    assert _one_answer(err).startswith("teem: TEEM_POSTGRES_URL is not a postgresql://")
    assert "canary" not in err and "Pa/ss" not in err
