"""The `teem` command as a user runs it: sample-unload, check-unload, run and demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg2.extensions
from corpus import CORPUS

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES
from teem_assets.cli import main

TEEM = str(Path(sys.executable).parent / "teem")


def _teem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TEEM, *args], capture_output=True, text=True, timeout=300)


def test_sample_unload_writes_the_layout(tmp_path: Path):
    result = _teem(
        "sample-unload", "--out", str(tmp_path), "--start", "2019-09-01", "--days", "2", "--seed", "7", "--manifest"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "csv/dim_company/snapshot/dim_company_0000_part_00").exists()
    assert (tmp_path / "csv/fact_event_by_day/incremental/2019-09-02/fact_event_by_day_manifest").exists()
    checked = _teem(
        "check-unload", str(tmp_path / "csv/fact_attendance/incremental/2019-09-02"), "--table", "fact_attendance"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ", 0 malformed" in checked.stdout.splitlines()[-1]


def test_check_unload_jsonl_prints_only_rows(tmp_path: Path):
    result = _teem(
        "check-unload",
        str(CORPUS / "case_37.txt"),
        "--jsonl",
        "--columns",
        "id:int,text:varchar(64),n:varchar(4),amount:decimal(12,2),at:timestamp",
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"id": 42, "text": "a|b\\c\"d'e\nf\rg", "n": None, "amount": "1.10", "at": "2020-02-29T23:59:59.500000"}
    ]


def test_check_unload_jsonl_floats(tmp_path: Path):
    result = _teem("check-unload", str(CORPUS / "case_26.txt"), "--jsonl", "--columns", "x:float8")
    assert [json.loads(line)["x"] for line in result.stdout.splitlines()] == ["NaN", "Infinity", "-Infinity"]
    result = _teem("check-unload", str(CORPUS / "case_22.txt"), "--jsonl", "--columns", "x:bool")
    assert [json.loads(line)["x"] for line in result.stdout.splitlines()] == [True, False, None]


def test_check_unload_reports_malformed_records_and_exits_1():
    result = _teem("check-unload", str(CORPUS / "case_45.txt"), "--columns", "id:int,name:varchar(8)")
    assert result.returncode == 1
    assert f"{CORPUS / 'case_45.txt'}:2: record 2: field_count" in result.stdout
    assert "2 records, 1 rows, 1 malformed" in result.stdout


def test_check_unload_escaped_null_error_policy():
    result = _teem(
        "check-unload", str(CORPUS / "case_51.txt"), "--columns", "id:int,v:varchar(4)", "--escaped-null", "error"
    )
    assert result.returncode == 1 and "ambiguous_null" in result.stdout


def test_check_unload_bad_arguments_say_why(tmp_path: Path):
    result = _teem("check-unload", str(tmp_path / "missing"), "--table", "dim_date")
    assert result.returncode == 2 and "no such file" in result.stderr
    result = _teem("check-unload", str(CORPUS / "case_01.txt"), "--columns", "a:money")
    assert result.returncode == 2 and "money" in result.stderr


# Canary values in every secret setting: the PostgreSQL password written into the URL as it is, with the
# characters a URL would take for its next part.
PG_CANARY = "Pg/canary#pw?x@1"
SMTP_CANARY = "smtp-canary-secret"
SLACK_CANARY = "xoxb-canary-slack-token"


def _with_password(url: str, user: str, password: str) -> str:
    """`url` (postgresql://user[:password]@…, or key=value) logging in as `user` with `password`."""
    if "://" not in url:
        return f"{url} user={user} password='{password}'"
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.split('@', 1)[1]}"


def test_run_materializes_a_range_into_the_dagster_instance_and_no_secret_leaks(
    tmp_path: Path, postgres_url: str, pg_schema: str
):
    """`teem run` as a user runs it, with every secret set to a canary: one passing and one failing run, then
    nothing under TEEM_HOME (logs, the Dagster instance's event log, compute logs and metadata) holds a canary."""
    import dagster as dg
    from dagster_helpers import small_sample

    root = small_sample(tmp_path / "root")
    user = psycopg2.extensions.parse_dsn(postgres_url).get("user", "postgres")
    env = {
        **os.environ,
        "TEEM_ROOT": str(root),
        "TEEM_HOME": str(tmp_path / "home"),
        "TEEM_POSTGRES_URL": _with_password(postgres_url, user, PG_CANARY),  # local servers trust the user
        "TEEM_PG_SCHEMA": pg_schema,
        "TEEM_SMTP_HOST": "127.0.0.1",
        "TEEM_SMTP_USER": "alerts",
        "TEEM_SMTP_PASSWORD": SMTP_CANARY,
        "TEEM_ALERT_EMAIL_TO": "data-team@example.com",
        "TEEM_SLACK_TOKEN": SLACK_CANARY,
    }
    result = subprocess.run(
        [TEEM, "run", "--from", "2019-09-02", "--to", "2019-09-03"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shown = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    lines = {line.split()[0]: line for line in shown if "/" in line.split()[0]}
    assert "2019-09-02..2019-09-03" in lines["migrated/fact_event_by_day"]
    every_table = {f"{layer}/{t}" for layer in ("parquet", "migrated", "postgres") for t in TABLES}
    assert set(lines) == every_table | {f"{layer}/{a}" for layer in ("aggregates", "postgres") for a in AGGREGATES}
    assert not (root / "parquet" / "fact_attendance" / "batch_date=2019-09-01").exists()
    # the run is recorded where `./dev.sh ui` looks, with its partitions
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "migration_job"
    assert instance.get_materialized_partitions(dg.AssetKey(["migrated", "fact_event_by_day"])) == {
        "2019-09-02", "2019-09-03"
    }  # fmt: skip

    def table(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TEEM, "table", *args], env=env, capture_output=True, text=True, timeout=300)

    # `teem table`: the migrated table through the catalog and its export in PostgreSQL, row for row
    migrated = [json.loads(line) for line in table("fact_event_by_day", "--jsonl").stdout.splitlines()]
    exported = [
        json.loads(line) for line in table("fact_event_by_day", "--layer", "postgres", "--jsonl").stdout.splitlines()
    ]
    assert len(migrated) == len(exported) > 0, table("fact_event_by_day", "--layer", "postgres", "--jsonl").stderr
    for row in migrated:
        assert row.pop("created_date") == row["edw_event_by_day_created_at"][:10]
    assert migrated == exported
    shown = table("agg_hourly_space")
    assert shown.returncode == 0 and shown.stdout.startswith("aggregates/agg_hourly_space: ")
    assert int(shown.stdout.split(": ")[1].split()[0]) > 0
    missing = table("fact_everything")
    assert missing.returncode == 2 and "fact_event_by_day" in missing.stderr

    # a failing run (its login refused), after the passing one: still no canary anywhere
    failing = {**env, "TEEM_POSTGRES_URL": _with_password(postgres_url, "no_such_role_here", PG_CANARY)}
    failed = subprocess.run(
        [TEEM, "run", "--from", "2019-09-01", "--to", "2019-09-01"],
        env=failing, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert failed.returncode == 1 and "no_such_role_here" in failed.stdout + failed.stderr
    assert "canary" not in failed.stdout + failed.stderr + result.stdout + result.stderr
    assert len(instance.get_runs()) == 2
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in files) and any("dagster" in p.parts for p in files)
    assert [str(p) for p in files if b"canary" in _bytes_of(p).lower()] == []


def test_run_rejects_an_inverted_range():
    result = _teem("run", "--from", "2019-09-03", "--to", "2019-09-01")
    assert result.returncode != 0 and "before" in result.stderr


def test_definitions_validate():
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_check_unload_jsonl_prints_decimals_plainly_at_their_scale(tmp_path: Path):
    unload = tmp_path / "decimals.txt"
    unload.write_text("0|0\n12.5|-3\n-0.0000000001|99999999\n1234567890123456789012345678.1234567890|7\n")
    result = _teem("check-unload", str(unload), "--jsonl", "--columns", "x:decimal(38,10),y:decimal(10,0)")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"x": "0.0000000000", "y": "0"},
        {"x": "12.5000000000", "y": "-3"},
        {"x": "-0.0000000001", "y": "99999999"},
        {"x": "1234567890123456789012345678.1234567890", "y": "7"},
    ]


def test_check_unload_names_an_unreadable_part_without_a_traceback(tmp_path: Path):
    import gzip

    data = bytearray(gzip.compress(b'"1"|"a"\n"2"|"b"\n'))
    data[-6] ^= 0xFF  # the checksum no longer matches: corrupt, not truncated
    part = tmp_path / "fact_0000_part_00.gz"
    part.write_bytes(bytes(data))
    result = _teem("check-unload", str(part), "--columns", "id:int,name:varchar(8)")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"teem check-unload: {part}: cannot read the file: ")
    assert "Traceback" not in result.stderr and "incorrect data check" in result.stderr


SPARK_LOGGER_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
JAVA_STACK_LINE = re.compile(
    r"^\s+at [\w$.<>]+\(|^Exception in thread |^Caused by: |^(java|org|scala)\.[\w.$]+(Exception|Error)"
)
STAGES = [
    "parquet_snapshots",
    "migrated_snapshots",
    "postgres_snapshots",
    "parquet_batches",
    "migrated_batches",
    "postgres_batches",
    "aggregates",
    "postgres_aggregates",
]


def test_demo_shows_each_stage_and_keeps_spark_logs_in_a_file(tmp_path: Path, postgres_url: str, pg_schema: str):
    from tables import iceberg_rows

    env = {
        **os.environ,
        "TEEM_HOME": str(tmp_path / "home"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_PG_SCHEMA": pg_schema,
    }
    root = tmp_path / "root"
    result = subprocess.run([TEEM, "demo", "--root", str(root)], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    shown = (result.stdout + result.stderr).splitlines()
    assert not [line for line in shown if SPARK_LOGGER_LINE.match(line) or JAVA_STACK_LINE.match(line)]
    assert not [line for line in shown if "Traceback" in line or "Setting default log level" in line]
    assert result.stderr == ""

    stage_lines = [line.split() for line in shown if line.startswith("  ") and line.split()[0] in STAGES]
    assert [words[0] for words in stage_lines] == STAGES  # each once, in the order they ran
    migrated_facts = next(words for words in stage_lines if words[0] == "migrated_batches")
    event_rows = iceberg_rows(root, "migrated", "fact_event_by_day").num_rows
    attendance_rows = iceberg_rows(root, "migrated", "fact_attendance").num_rows
    assert migrated_facts[1:5] == ["2", "tables", str(event_rows + attendance_rows), "rows"]
    assert float(migrated_facts[5]) > 0 and migrated_facts[6] == "s"

    table = {line.split()[0]: line.split() for line in shown if line.startswith("  ") and "/" in line.split()[0]}
    assert table["migrated/fact_event_by_day"][1:3] == ["2019-09-01..2019-09-14", str(event_rows)]

    [log] = (tmp_path / "home" / "logs").iterdir()
    assert str(log) in result.stdout
    logged = log.read_text().splitlines()
    assert any(SPARK_LOGGER_LINE.match(line) for line in logged)  # Spark's logger did speak: into the file
    assert any("migration_job" in line and "dagster" in line for line in logged)


def _bytes_of(path: Path) -> bytes:
    """A file's bytes; nothing for one gone since it was listed (SQLite's -shm and -wal files come and go)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def test_iam_policy_names_a_log_uri_apart_from_the_root_and_refuses_a_local_setup(monkeypatch, capsys):
    settings = {"TEEM_ENV": "aws", "TEEM_ROOT": "s3://acme-data/teem", "TEEM_SPARK": "emr",
                "TEEM_EMR_ARCHIVE_URI": "s3://acme-artifacts/teem.tar.gz", "AWS_REGION": "eu-west-1",
                "TEEM_EMR_LOG_URI": "s3://acme-logs/emr/", "TEEM_EMR_SERVICE_ROLE": "AcmeEmrService"}  # fmt: skip
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert main(["iam-policy", "--account", "111122223333"]) == 0
    documents = json.loads(capsys.readouterr().out)
    by_sid = {role: {s["Sid"]: s for s in documents[role]["Statement"]} for role in documents if role != "network"}
    assert by_sid["dagster_role"]["TeemLogs"] == {
        "Sid": "TeemLogs", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme-logs/emr/*"]
    }  # fmt: skip
    assert by_sid["instance_profile_role"]["TeemLogs"]["Action"] == ["s3:PutObject"]
    assert by_sid["dagster_role"]["TeemEmrPassRoles"]["Resource"] == [
        "arn:aws:iam::111122223333:role/AcmeEmrService",
        "arn:aws:iam::111122223333:role/EMR_EC2_DefaultRole",
    ]
    assert by_sid["dagster_role"]["TeemRootObjects"]["Resource"] == ["arn:aws:s3:::acme-data/teem/*"]
    assert (
        "arn:aws:glue:eu-west-1:111122223333:table/acme_data_teem_migrated/*"
        in (by_sid["instance_profile_role"]["TeemCatalog"]["Resource"])
    )
    assert documents["network"]["tags"] == {"for-use-with-amazon-emr-managed-policies": "true"}
    monkeypatch.setenv("TEEM_ROOT", "/data/teem")
    assert main(["iam-policy", "--account", "111122223333"]) == 2
    assert "S3 root" in capsys.readouterr().err
