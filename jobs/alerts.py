"""Alerts by email and on Slack, with the run's link: every failed run, every failed warning check (once per
check and partition), and the weekly snapshot's success."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from jobs.batch_jobs import snapshot_job
from resources.alerts import EmailAlerts, SlackAlerts
from teem_assets.settings import webserver_url


def run_link(run_id: str) -> str:
    return f"{webserver_url()}/runs/{run_id}"


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


@dg.run_failure_sensor(
    name="run_failure_alerts",
    description="Emails and posts to Slack every failed run of this code location, with the error and a link.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alerts(context: dg.RunFailureSensorContext, email: EmailAlerts, slack: SlackAlerts) -> None:
    run = context.dagster_run
    partition = partitions_of(run)
    subject = f"teem-pipelines: {run.job_name} failed (run {run.run_id})"
    body = f"{context.failure_event.message}\nPartition: {partition or 'none'}\n{run_link(run.run_id)}"
    deliver(context.log, email, slack, subject, body)


@dg.run_status_sensor(
    name="snapshot_success_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[snapshot_job],
    description="Reports each successful weekly snapshot_job run by email and on Slack.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def snapshot_success_alerts(context: dg.RunStatusSensorContext, email: EmailAlerts, slack: SlackAlerts) -> None:
    run = context.dagster_run
    subject = f"teem-pipelines: {run.job_name} succeeded (run {run.run_id})"
    deliver(context.log, email, slack, subject, f"The dimension snapshots are migrated.\n{run_link(run.run_id)}")


def _text(value: object) -> str:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)


def _alerted_before(instance: dg.DagsterInstance, record: dg.EventLogRecord, partitions: str) -> bool:
    """Whether an earlier failed evaluation of the same check covered the same partitions (and so alerted)."""
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    earlier = instance.event_log_storage.get_asset_check_execution_history(
        evaluation.asset_check_key, limit=50, status={AssetCheckExecutionRecordStatus.FAILED}
    )
    now = record.event_log_entry.timestamp
    run_ids = [e.run_id for e in earlier if e.event is not None and e.event.timestamp < now]
    runs = instance.get_runs(dg.RunsFilter(run_ids=run_ids)) if run_ids else []
    return any(partitions_of(run) == partitions for run in runs)


WARNINGS_PER_TICK = 200


@dg.sensor(
    name="check_warning_alerts",
    description="Emails and posts to Slack each failed warning check (companies_still_present, "
    "newest_batch_is_fresh) with its metadata, once per check and partition.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
def check_warning_alerts(
    context: dg.SensorEvaluationContext, email: EmailAlerts, slack: SlackAlerts
) -> dg.SkipReason | None:
    instance = context.instance
    events = EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION)
    if context.cursor is None:  # a new sensor starts from now, not with every warning of the past
        newest = instance.event_log_storage.get_event_records(events, limit=1, ascending=False)
        context.update_cursor(str(newest[0].storage_id if newest else 0))
        return dg.SkipReason("started: warnings from now on")
    after = int(context.cursor)
    records = instance.event_log_storage.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=WARNINGS_PER_TICK,
        ascending=True,
    )
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.WARN:
            continue
        run = instance.get_run_by_id(record.run_id)
        partitions = partitions_of(run) if run else ""
        if _alerted_before(instance, record, partitions):
            continue
        check = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        subject = f"teem-pipelines: warning {check} failed" + (f" for {partitions}" if partitions else "")
        details = "\n".join(f"{name}: {_text(value)}" for name, value in sorted(evaluation.metadata.items()))
        deliver(context.log, email, slack, subject, f"{details}\n{run_link(record.run_id)}")
    if records:
        context.update_cursor(str(records[-1].storage_id))
    return None


alert_sensors = [run_failure_alerts, check_warning_alerts, snapshot_success_alerts]
