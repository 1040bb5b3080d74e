"""The batch checks on real runs, and the alerts they lead to, delivered to a local SMTP server (aiosmtpd)
and a local HTTP stand-in for Slack's API."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiosmtpd.controller import Controller
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job
from servers import free_port

from resources.alerts import EmailAlerts, SlackAlerts
from teem_assets import converted, layout
from teem_assets.assets.held_back import admitted_ranges
from teem_assets.assets.parquet import VOLUME
from teem_assets.catalogue import TABLES
from teem_assets.checks.freshness import freshness
from teem_assets.conversion import distinct_values
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.settings import load
from teem_assets.verdicts.batches import missing_companies, short_batches, volume_verdict
from teem_assets.verdicts.history import LOOKBACK_DAYS, BatchHistory

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=4, seed=7)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
EVENTS = TABLES["fact_event_by_day"]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Inbox]:
    inbox, port = _Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    for name, value in {"TEEM_SMTP_HOST": "127.0.0.1", "TEEM_SMTP_PORT": str(port), "TEEM_SMTP_STARTTLS": "false",
                        "TEEM_ALERT_EMAIL_TO": "data-team@example.com"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    yield inbox
    controller.stop()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    posts: list[dict] = []

    class StandIn(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body.decode()})
            answer = json.dumps({"ok": True, "channel": "C1", "ts": "1.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TEEM_SLACK_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("TEEM_SLACK_API_URL", f"http://127.0.0.1:{server.server_port}/api/")
    yield posts
    server.shutdown()


def _resources() -> dict[str, object]:
    settings = load()
    return {"email": EmailAlerts.from_settings(settings), "slack": SlackAlerts.from_settings(settings)}


def _migrated(
    tmp_path: Path,
    monkeypatch,
    postgres_url: str,
    pg_schema: str,
    spec: SampleSpec = SPEC,
    days: int = 3,
    instance: dg.DagsterInstance | None = None,
) -> tuple[Path, dg.Definitions]:
    """The sample's root with its first `days` days run through every layer, and the definitions on it."""
    root = tmp_path / "root"
    generate_sample(str(root), spec, UnloadOptions())
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    dates = [d.isoformat() for d in spec.batch_dates]
    assert run_job(defs, "migration_job", dates[0], dates[days - 1], instance=instance).success
    return root, defs


def test_a_short_batch_stops_before_the_aggregates_and_alerts_by_email_and_slack(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, smtp, slack
) -> None:
    week = SampleSpec(start=dt.date(2019, 9, 1), days=8, seed=7)  # Sunday to Sunday
    day = week.batch_dates[7].isoformat()
    root, defs = _migrated(tmp_path, monkeypatch, postgres_url, pg_schema, week, 7)
    sunday_before = len(list(batch_rows(week, EVENTS.name, week.batch_dates[0])))  # the baseline
    short = list(batch_rows(week, EVENTS.name, week.batch_dates[7]))[: int(0.8 * sunday_before)]
    replace_raw_batch(root, EVENTS, day, short)

    instance = dg.DagsterInstance.ephemeral()
    result = run_job(defs, "batch_job", day, instance=instance, raise_on_error=False)

    assert not result.success
    volume = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert not volume["fact_event_by_day"].passed and volume["fact_attendance"].passed
    assert volume["fact_event_by_day"].metadata["short_batches"].value == day
    found = materializations(result)
    assert "parquet/fact_event_by_day" in found
    assert not [key for key in found if key.startswith(("aggregates/", "migrated/", "postgres/"))]

    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=_resources(),
    ).for_run_failure()
    defs.resolve_sensor_def("run_failure_alerts")(context)

    run_id = result.run_id
    [email] = smtp.messages
    assert f"batch_job failed (run {run_id})" in email["subject"] and f"/runs/{run_id}" in email.get_content()
    assert f"Partition: {day}" in email.get_content().splitlines()
    [post] = slack
    assert post["path"] == "/api/chat.postMessage" and post["auth"] == "Bearer xoxb-test-token"
    assert run_id in post["body"] and f"/runs/{run_id}" in post["body"]


def test_the_weekly_snapshot_reports_its_success(tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark,
                                                 smtp, slack) -> None:  # fmt: skip
    root = tmp_path / "root"
    generate_sample(str(root), SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=7), UnloadOptions())
    instance = dg.DagsterInstance.ephemeral()
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    result = run_job(defs, "snapshot_job", instance=instance)
    assert result.success
    [success] = [e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS"]
    context = dg.build_run_status_sensor_context(
        sensor_name="snapshot_success_alerts",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=_resources(),
    )
    defs.resolve_sensor_def("snapshot_success_alerts")(context)
    assert f"snapshot_job succeeded (run {result.run_id})" in smtp.messages[0]["subject"]
    assert result.run_id in slack[0]["body"]


def _batch(root: Path, day: str, companies: list[int], rows_each: int = 10) -> None:
    """A converted batch with `rows_each` rows of each company, committed as a conversion commits one."""
    folder = layout.parquet_batch(str(root), EVENTS.name, day)
    attempt = converted.new_attempt()
    Path(folder, attempt).mkdir(parents=True)
    ids = [c for c in companies for _ in range(rows_each)]
    table = pa.table({"edw_event_by_day_company_id": pa.array(ids, pa.int32())})
    pq.write_table(table, Path(folder, attempt, "part.parquet"))
    uris = [str(Path(folder, attempt, "part.parquet"))]
    companies_found = distinct_values(uris, "edw_event_by_day_company_id")
    converted.commit(converted.ConvertedBatch(folder, attempt, ["part.parquet"], len(ids), 0, "", companies_found))


def test_volume_against_the_same_weekday_of_the_weeks_before(tmp_path: Path) -> None:
    for day, rows in [("2019-08-19", 10), ("2019-08-25", 2), ("2019-08-26", 12), ("2019-08-27", 100)]:
        _batch(tmp_path, day, [1, 2, 3], rows)  # Mon 30 rows, Sun 6, Mon 36, Tue 300
    folder = layout.parquet_table(str(tmp_path), EVENTS.name)
    first = volume_verdict(BatchHistory(folder), "2019-08-19", 4, 0.95)
    assert first.passed and first.baseline is None  # nothing to compare with

    _batch(tmp_path, "2019-09-02", [1, 2, 3], 29 // 3 + 1)  # a Monday of 30 rows against Mondays of 30 and 36
    monday = volume_verdict(BatchHistory(folder), "2019-09-02", 4, 0.95)
    assert (monday.rows, monday.baseline, monday.compared_with) == (30, 30, ("2019-08-19", "2019-08-26"))
    assert monday.passed  # the Tuesday of 300 is not its baseline, nor the Sunday of 6
    week_before = volume_verdict(BatchHistory(folder), "2019-09-02", 1, 0.95)
    assert not week_before.passed  # the week before alone: 30 of 36, 83.3%
    assert "83.3% of 36, the fewest of 2019-08-26" in week_before.describe()

    # a Sunday of 6 rows passes against the Sunday before (6), where the working days' volume would fail it
    _batch(tmp_path, "2019-09-01", [1, 2, 3], 2)
    sunday = volume_verdict(BatchHistory(folder), "2019-09-01", 4, 0.95)
    assert (sunday.baseline, sunday.compared_with, sunday.passed) == (6, ("2019-08-25",), True)

    # a Wednesday without an earlier Wednesday (the first week): nothing to compare with, however few its rows
    _batch(tmp_path, "2019-08-28", [1, 2, 3], 1)
    wednesday = volume_verdict(BatchHistory(folder), "2019-08-28", 4, 0.95)
    assert (wednesday.rows, wednesday.baseline, wednesday.compared_with, wednesday.passed) == (3, None, (), True)
    assert "nothing to compare with" in wednesday.describe()

    # the dates a run holds back: short in any table
    other = layout.parquet_table(str(tmp_path), "other")
    assert short_batches([folder], ["2019-08-28", "2019-09-01", "2019-09-02"], 4, 0.95) == []
    assert short_batches([other, folder], ["2019-09-01", "2019-09-02"], 1, 0.95) == ["2019-09-02"]
    # and the ranges its other dates run in, on their own (a month's end crossed)
    assert admitted_ranges("2019-08-28", "2019-09-03", ["2019-08-28", "2019-09-01", "2019-09-02"]) == [
        ("2019-08-29", "2019-08-31"),
        ("2019-09-03", "2019-09-03"),
    ]
    assert admitted_ranges("2019-09-01", "2019-09-02", ["2019-09-01", "2019-09-02"]) == []


def test_companies_against_the_batches_before(tmp_path: Path) -> None:
    for day, companies in [("2019-09-01", [1, 2, 3]), ("2019-09-02", [1, 2, 3]), ("2019-09-03", [1, 2]),
                           ("2019-09-04", [1, 2, 4])]:  # fmt: skip
        _batch(tmp_path, day, companies)
    folder = layout.parquet_table(str(tmp_path), EVENTS.name)
    assert missing_companies(BatchHistory(folder), "2019-09-04", 7) == [3]
    assert missing_companies(BatchHistory(folder), "2019-09-04", 1) == []
    assert missing_companies(BatchHistory(folder), "2019-09-03", 7) == [3]


def test_freshness_counts_from_the_end_of_the_newest_batch_day() -> None:
    now = dt.datetime(2019, 9, 5, 12, 0, tzinfo=dt.UTC)
    assert freshness("2019-09-04", now, 24).age_hours == 12 and freshness("2019-09-04", now, 24).passed
    assert freshness("2019-09-02", now, 48).age_hours == 60 and not freshness("2019-09-02", now, 48).passed
    assert not freshness(None, now, 48).passed


def test_the_trailing_batches_are_looked_up_by_date_within_a_bounded_window(tmp_path: Path) -> None:
    _batch(tmp_path, "2019-07-01", [9], 1000)  # more than LOOKBACK_DAYS before: outside the window
    for day in ["2019-08-20", "2019-08-22", "2019-08-27"]:  # days without a batch in between are skipped
        _batch(tmp_path, day, [1, 2], 10)
    _batch(tmp_path, "2019-08-29", [5], 10)  # after the batch checked: never part of its window
    folder = layout.parquet_table(str(tmp_path), EVENTS.name)
    verdict = volume_verdict(BatchHistory(folder), "2019-08-28", 4, 0.95)
    assert (verdict.rows, verdict.baseline, verdict.compared_with) == (0, None, ())  # no Wednesday before it
    assert missing_companies(BatchHistory(folder), "2019-08-28", 7) == [1, 2]
    window = [b.folder.rsplit("=", 1)[1] for b in BatchHistory(folder).previous("2019-08-28", 2)]
    assert window == ["2019-08-22", "2019-08-27"]
    assert len(BatchHistory(folder).previous("2019-08-28", 7)) == 3
    assert LOOKBACK_DAYS < (dt.date(2019, 8, 28) - dt.date(2019, 7, 1)).days
    assert volume_verdict(BatchHistory(folder), "2019-09-03", 4, 0.95).compared_with == ("2019-08-20", "2019-08-27")


def test_a_failed_warning_check_alerts_once_per_partition(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, smtp, slack
) -> None:
    # The storage `dagster dev` and `teem` use by default: SQLite, the events sharded by run.
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    root, defs = _migrated(tmp_path, monkeypatch, postgres_url, pg_schema, instance=instance)
    rows = list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[3]))
    company = EVENTS.column_names.index("edw_event_by_day_company_id")
    companies = sorted({row[company] for row in rows})
    kept = [row for row in rows if row[company] != companies[0]]  # one company is missing from the batch
    replace_raw_batch(root, EVENTS, DAYS[3], kept)
    monkeypatch.setenv("TEEM_VOLUME_THRESHOLD", "0.000001")  # a smaller batch, on purpose: only the warning fails

    def tick(cursor: str | None) -> str | None:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=_resources())
        defs.resolve_sensor_def("check_warning_alerts")(context)
        return context.cursor

    cursor = tick(None)  # a new sensor starts from now: the warnings of the runs before are not sent
    assert smtp.messages == [] and slack == []
    first = run_job(defs, "batch_job", DAYS[3], instance=instance)
    assert first.success  # a warning blocks nothing
    [companies_check] = [e for e in first.get_asset_check_evaluations() if e.check_name == "companies_still_present"]
    assert not companies_check.passed
    cursor = tick(cursor)
    [email] = smtp.messages
    check = "parquet/fact_event_by_day:companies_still_present"
    assert email["subject"] == f"teem-pipelines: warning {check} failed for {DAYS[3]}"
    body = email.get_content()
    assert f'missing_companies: {{"{DAYS[3]}": ["{companies[0]}"]}}' in body and f"/runs/{first.run_id}" in body
    [post] = slack
    assert str(companies[0]) in post["body"] and "companies_still_present" in post["body"]

    again = run_job(defs, "batch_job", DAYS[3], instance=instance)  # the same partition, evaluated again
    assert again.success
    assert [e.passed for e in again.get_asset_check_evaluations() if e.check_name == "companies_still_present"] == [
        False
    ]
    tick(cursor)
    assert len(smtp.messages) == 1 and len(slack) == 1
