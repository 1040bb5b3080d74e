"""Alerts by email and on Slack, with the run's link: every failed run, every failed warning check (once per
check and partition), and the weekly snapshot's success."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from jobs.batch_jobs import Jobs
from resources.alerts import EmailAlerts, SlackAlerts
from teem_assets.settings import Settings


def run_link(webserver_url: str, run_id: str) -> str:
    return f"{webserver_url}/runs/{run_id}"


def deliver(log: dg.DagsterLogManager, email: EmailAlerts, slack: SlackAlerts, subject: str, body: str) -> list[str]:
    """Send to every configured channel; one channel failing does not stop the other. Returns where it went."""
    sent = []
    for name, channel, send in (
        ("email", email, lambda: email.send(subject, body)),
        ("slack", slack, lambda: slack.send(f"*{subject}*\n{body}")),
    ):
        if not channel.configured:
            log.info(f"{name} alerts are not configured")
            continue
        try:
            send()
            sent.append(name)
        except Exception as error:  # an alert channel down must not hide the other one
            log.error(f"{name} alert not sent: {error}")
    return sent


def partitions_of(run: dg.DagsterRun) -> str:
    """The partition, or range of partitions, a run covered ("" for none)."""
    if "dagster/partition" in run.tags:
        return run.tags["dagster/partition"]
    start, end = run.tags.get("dagster/asset_partition_range_start"), run.tags.get("dagster/asset_partition_range_end")
    return f"{start}...{end}" if start and start != end else start or ""


def alert_on_failure(context: dg.RunFailureSensorContext, email: EmailAlerts, slack: SlackAlerts, link: str) -> None:
    run = context.dagster_run
    partition = partitions_of(run)
    subject = f"teem-pipelines: {run.job_name} failed (run {run.run_id})"
    body = f"{context.failure_event.message}\nPartition: {partition or 'none'}\n{link}"
    deliver(context.log, email, slack, subject, body)


def alert_on_snapshot(context: dg.RunStatusSensorContext, email: EmailAlerts, slack: SlackAlerts, link: str) -> None:
    run = context.dagster_run
    subject = f"teem-pipelines: {run.job_name} succeeded (run {run.run_id})"
    deliver(context.log, email, slack, subject, f"The dimension snapshots are migrated.\n{link}")


def _text(value: object) -> str:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)


def _alerted_before(instance: dg.DagsterInstance, check: dg.AssetCheckKey, before: float, partitions: str) -> bool:
    """Whether an earlier failed evaluation of the same check covered the same partitions (and so alerted)."""
    earlier = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=50, status={AssetCheckExecutionRecordStatus.FAILED}
    )
    run_ids = [e.run_id for e in earlier if e.event is not None and e.event.timestamp < before]
    runs = instance.get_runs(dg.RunsFilter(run_ids=run_ids)) if run_ids else []
    return any(partitions_of(run) == partitions for run in runs)


RUNS_PER_TICK = 500
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
# Runs are read again this long after their last update, for a run whose update was stored late; the cursor
# remembers the ones already read in that window.
OVERLAP = dt.timedelta(seconds=60)


@dataclass
class _Cursor:
    after: float  # runs updated after this (epoch seconds, less OVERLAP) are read
    read: list[str]  # the runs read that were updated within OVERLAP of `after`

    @staticmethod
    def parse(text: str) -> _Cursor:
        found = json.loads(text)
        return _Cursor(found["after"], found["read"])

    def text(self) -> str:
        return json.dumps({"after": self.after, "read": self.read})


def _warnings(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[tuple[dg.EventLogEntry, object]]:
    entries = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    found = [(entry, entry.dagster_event.event_specific_data) for entry in entries]
    return [(e, v) for e, v in found if not v.passed and v.severity == dg.AssetCheckSeverity.WARN]


def alert_on_warnings(
    context: dg.SensorEvaluationContext, email: EmailAlerts, slack: SlackAlerts, webserver_url: str
) -> dg.SkipReason | None:
    """Reads the check evaluations of the runs that finished since its last tick: the run storage and each
    run's own events, which every event log storage serves (SQLite's default per-run shards included)."""
    instance = context.instance
    if context.cursor is None:  # a new sensor starts from now, not with every warning of the past
        context.update_cursor(_Cursor(time.time(), []).text())
        return dg.SkipReason("started: warnings from now on")
    cursor = _Cursor.parse(context.cursor)
    since = dt.datetime.fromtimestamp(cursor.after, dt.UTC) - OVERLAP
    records = instance.get_run_records(
        dg.RunsFilter(statuses=FINISHED, updated_after=since),
        limit=RUNS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    fresh = [r for r in records if r.dagster_run.run_id not in cursor.read]
    for record in fresh:
        run = record.dagster_run
        partitions = partitions_of(run)
        for entry, evaluation in _warnings(instance, run):
            if _alerted_before(instance, evaluation.asset_check_key, entry.timestamp, partitions):
                continue
            check = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            subject = f"teem-pipelines: warning {check} failed" + (f" for {partitions}" if partitions else "")
            details = "\n".join(f"{name}: {_text(value)}" for name, value in sorted(evaluation.metadata.items()))
            deliver(context.log, email, slack, subject, f"{details}\n{run_link(webserver_url, run.run_id)}")
    if records:
        newest = max(cursor.after, records[-1].update_timestamp.timestamp())
        window = newest - OVERLAP.total_seconds()
        recent = [r.dagster_run.run_id for r in records if r.update_timestamp.timestamp() > window]
        read = [run_id for run_id in cursor.read if run_id not in recent] + recent
        context.update_cursor(_Cursor(newest, read[-2 * RUNS_PER_TICK :]).text())
    return None


def alert_sensors(settings: Settings, jobs: Jobs) -> list[dg.SensorDefinition]:
    """The three alert sensors; their links lead to TEEM_WEBSERVER_URL."""
    url = settings.webserver_url

    @dg.run_failure_sensor(
        name="run_failure_alerts",
        description="Emails and posts to Slack every failed run of this code location, with the error and a link.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, email: EmailAlerts, slack: SlackAlerts) -> None:
        alert_on_failure(context, email, slack, run_link(url, context.dagster_run.run_id))

    @dg.sensor(
        name="check_warning_alerts",
        description="Emails and posts to Slack each failed warning check (companies_still_present, "
        "newest_batch_is_fresh, no_stale_parts, files_within_thresholds, catalogue_rules) with its metadata, once "
        "per check and partition.",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
    )
    def check_warning_alerts(
        context: dg.SensorEvaluationContext, email: EmailAlerts, slack: SlackAlerts
    ) -> dg.SkipReason | None:
        return alert_on_warnings(context, email, slack, url)

    @dg.run_status_sensor(
        name="snapshot_success_alerts",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[jobs.snapshot],
        description="Reports each successful weekly snapshot_job run by email and on Slack.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def snapshot_success_alerts(context: dg.RunStatusSensorContext, email: EmailAlerts, slack: SlackAlerts) -> None:
        alert_on_snapshot(context, email, slack, run_link(url, context.dagster_run.run_id))

    return [run_failure_alerts, check_warning_alerts, snapshot_success_alerts]
