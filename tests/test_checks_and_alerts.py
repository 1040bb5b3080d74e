"""The batch checks on real runs, and the alerts they lead to, delivered to a local SMTP server (aiosmtpd)
and a local HTTP stand-in for Slack's API."""

from __future__ import annotations

import datetime as dt
import json
import statistics
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

from jobs.alerts import check_warning_alerts, run_failure_alerts, snapshot_success_alerts
from resources.alerts import EmailAlerts, SlackAlerts
from teem_assets import converted, layout
from teem_assets.assets.parquet import VOLUME
from teem_assets.catalogue import TABLES
from teem_assets.checks.freshness import freshness
from teem_assets.conversion import distinct_values
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.verdicts.batches import missing_companies, volume_verdict
from teem_assets.verdicts.history import LOOKBACK_DAYS, previous_batches

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
    return {"email": EmailAlerts.from_environment(), "slack": SlackAlerts.from_environment()}


def _three_days_migrated(
    tmp_path: Path, monkeypatch, postgres_url: str, pg_schema: str, instance: dg.DagsterInstance | None = None
) -> tuple[Path, dg.Definitions]:
    """The sample's root with its first three days run through every layer, and the definitions on it."""
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions())
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assert run_job(defs, "migration_job", DAYS[0], DAYS[2], instance=instance).success
    return root, defs


def test_a_short_batch_stops_before_the_aggregates_and_alerts_by_email_and_slack(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, smtp, slack
) -> None:
    root, defs = _three_days_migrated(tmp_path, monkeypatch, postgres_url, pg_schema)
    earlier = [len(list(batch_rows(SPEC, EVENTS.name, d))) for d in SPEC.batch_dates[:3]]
    short = list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[3]))[: int(0.8 * statistics.median(earlier))]
    replace_raw_batch(root, EVENTS, DAYS[3], short)

    instance = dg.DagsterInstance.ephemeral()
    result = run_job(defs, "batch_job", DAYS[3], instance=instance, raise_on_error=False)

    assert not result.success
    volume = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert not volume["fact_event_by_day"].passed and volume["fact_attendance"].passed
    assert volume["fact_event_by_day"].metadata["short_batches"].value == DAYS[3]
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
    run_failure_alerts(context)

    run_id = result.run_id
    [email] = smtp.messages
    assert f"batch_job failed (run {run_id})" in email["subject"] and f"/runs/{run_id}" in email.get_content()
    assert f"Partition: {DAYS[3]}" in email.get_content().splitlines()
    [post] = slack
    assert post["path"] == "/api/chat.postMessage" and post["auth"] == "Bearer xoxb-test-token"
    assert run_id in post["body"] and f"/runs/{run_id}" in post["body"]


def test_the_weekly_snapshot_reports_its_success(tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark,
                                                 smtp, slack) -> None:  # fmt: skip
    root = tmp_path / "root"
    generate_sample(str(root), SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=7), UnloadOptions())
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(definitions(monkeypatch, root, postgres_url, pg_schema), "snapshot_job", instance=instance)
    assert result.success
    [success] = [e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS"]
    context = dg.build_run_status_sensor_context(
        sensor_name="snapshot_success_alerts",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=_resources(),
    )
    snapshot_success_alerts(context)
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


def test_volume_and_companies_against_the_batches_before(tmp_path: Path) -> None:
    for day, companies, rows in [("2019-09-01", [1, 2, 3], 10), ("2019-09-02", [1, 2, 3], 12),
                                 ("2019-09-03", [1, 2], 12), ("2019-09-04", [1, 2, 4], 9)]:  # fmt: skip
        _batch(tmp_path, day, companies, rows)
    folder = layout.parquet_table(str(tmp_path), EVENTS.name)
    first = volume_verdict(folder, "2019-09-01", 7, 0.95)
    assert first.passed and first.trailing_median is None  # nothing to compare with
    # 2019-09-03: 24 rows against the median of 30 and 36 (33): 72.7%
    third = volume_verdict(folder, "2019-09-03", 7, 0.95)
    assert (third.rows, third.trailing_median, third.passed) == (24, 33, False)
    assert volume_verdict(folder, "2019-09-03", 7, 0.7).passed
    # 2019-09-04: 27 rows against the median of 30, 36, 24 (30) with a window of 7: 90%; of 24 with 1: 112.5%
    assert not volume_verdict(folder, "2019-09-04", 7, 0.95).passed
    assert volume_verdict(folder, "2019-09-04", 7, 0.9).passed
    assert volume_verdict(folder, "2019-09-04", 1, 0.95).passed
    assert missing_companies(folder, "2019-09-04", 7) == [3]
    assert missing_companies(folder, "2019-09-04", 1) == []
    assert missing_companies(folder, "2019-09-03", 7) == [3]


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
    verdict = volume_verdict(folder, "2019-08-28", 7, 0.95)
    assert (verdict.rows, verdict.trailing_median) == (0, 20)
    assert missing_companies(folder, "2019-08-28", 7) == [1, 2]
    window = [b.folder.rsplit("=", 1)[1] for b in previous_batches(folder, "2019-08-28", 2)]
    assert window == ["2019-08-22", "2019-08-27"]
    assert len(previous_batches(folder, "2019-08-28", 7)) == 3
    assert LOOKBACK_DAYS < (dt.date(2019, 8, 28) - dt.date(2019, 7, 1)).days


def test_a_failed_warning_check_alerts_once_per_partition(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, smtp, slack
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    root, defs = _three_days_migrated(tmp_path, monkeypatch, postgres_url, pg_schema, instance)
    rows = list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[3]))
    company = EVENTS.column_names.index("edw_event_by_day_company_id")
    companies = sorted({row[company] for row in rows})
    kept = [row for row in rows if row[company] != companies[0]]  # one company is missing from the batch
    replace_raw_batch(root, EVENTS, DAYS[3], kept)
    monkeypatch.setenv("TEEM_VOLUME_THRESHOLD", "0")  # a smaller batch, on purpose: only the warning fails

    def tick(cursor: str | None) -> str | None:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=_resources())
        check_warning_alerts(context)
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
