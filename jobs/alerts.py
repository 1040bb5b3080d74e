"""Alerts: every failed run, and the weekly snapshot's success, by email and on Slack, with the run's link."""

from __future__ import annotations

import dagster as dg

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


@dg.run_failure_sensor(
    name="run_failure_alerts",
    description="Emails and posts to Slack every failed run of this code location, with the error and a link.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alerts(context: dg.RunFailureSensorContext, email: EmailAlerts, slack: SlackAlerts) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_start", "")
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


alert_sensors = [run_failure_alerts, snapshot_success_alerts]
