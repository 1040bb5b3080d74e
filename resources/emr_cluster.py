"""A run's EMR cluster (DESIGN §4): the run's first Spark stage starts it, every stage is a step on it, and it
is terminated when the run ends (`SparkResource`'s teardown, which runs on success, failure and cancel). A run
worker that dies cannot terminate it: EMR's own `AutoTerminationPolicy` ends it once it has been idle that long,
and each step's deadline (`timeout` before spark-submit) ends a hung step first."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError

from resources.pipes_messages import delete_folder
from resources.stderr_tail import stderr_tail

ALIVE_STATES = {"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"}
FAILED_STEP_STATES = {"FAILED", "INTERRUPTED"}


def console_url(region: str, cluster_id: str) -> str:
    return f"https://{region}.console.aws.amazon.com/emr/home?region={region}#/clusterDetails/{cluster_id}"


def _reason(status: dict[str, Any]) -> str:
    reason = status.get("StateChangeReason", {})
    return f"{reason.get('Code', '')}: {reason.get('Message', '')}".strip(": ") or status["State"]


def _describe_step(step: dict[str, Any]) -> str:
    details = step["Status"].get("FailureDetails", {})
    where = f" (log {details['LogFile']})" if details.get("LogFile") else ""
    why = (
        details.get("Message")
        or details.get("Reason")
        or step["Status"].get("StateChangeReason", {}).get("Message")
        or "no reason given"
    )
    return f"step {step['Name']!r} {step['Status']['State']}: {why}{where}"


@dataclass
class RunCluster:
    """The cluster of one Dagster run, and the steps it ran; `emr` and `s3` are boto3 clients."""

    emr: Any
    s3: Any
    poll_seconds: float
    stderr_wait_seconds: float = 0
    hourly_rates: dict[str, float] = field(default_factory=dict)  # USD an instance-hour, by instance type
    cluster_id: str | None = None
    started: list[str] = field(default_factory=list)  # every cluster this run started, in order
    pipes_folders: set[tuple[str, str]] = field(default_factory=set)  # (bucket, folder) of the run's Pipes objects

    @property
    def region(self) -> str:
        return str(self.emr.meta.region_name)

    def where(self) -> str:
        return f"EMR cluster {self.cluster_id} ({console_url(self.region, str(self.cluster_id))})"

    def ensure(self, log: Any, job_flow: Callable[[], dict[str, Any]]) -> str:
        """The run's cluster: the one it started if that is still up, else a new one from `job_flow()`."""
        if self.cluster_id is not None:
            status = self._cluster()["Status"]
            if status["State"] in ALIVE_STATES:
                return self.cluster_id
            if status["State"] == "TERMINATED_WITH_ERRORS":
                raise dg.Failure(f"{self.where()} {status['State']}: {_reason(status)}", allow_retries=False)
            log.warning(f"{self.where()} ended ({_reason(status)}); starting another for the rest of the run")
        self.cluster_id = self.emr.run_job_flow(**job_flow())["JobFlowId"]
        self.started.append(self.cluster_id)
        log.info(f"started {self.where()} for this run; each Spark stage is a step on it")
        return self.cluster_id

    def run_step(self, log: Any, step: dict[str, Any]) -> dict[str, Any]:
        """Add `step` to the cluster and wait for it; a failed step raises with its reason and stderr's tail, a
        cluster that failed raises with its own reason (not retried: another cluster would fail the same way)."""
        [step_id] = self.emr.add_job_flow_steps(JobFlowId=self.cluster_id, Steps=[step])["StepIds"]
        log.info(f"step {step_id} ({step['Name']}) added to {self.where()}")
        try:
            return self._wait_for(step_id)
        except DagsterExecutionInterruptedError:
            log.warning(f"interrupted: terminating {self.where()}")
            self.terminate(log)
            raise

    def _wait_for(self, step_id: str) -> dict[str, Any]:
        while True:
            step = self.emr.describe_step(ClusterId=self.cluster_id, StepId=step_id)["Step"]
            state = step["Status"]["State"]
            if state == "COMPLETED":
                return step
            if state in FAILED_STEP_STATES:
                raise dg.Failure(f"{self.where()}: {_describe_step(step)}{self._stderr_tail(step)}")
            cluster = self._cluster()
            if state == "CANCELLED" or cluster["Status"]["State"] not in ALIVE_STATES:
                # The cluster itself failed (a bootstrap action, capacity, a setting) or was ended under the
                # step: its own reason says why, and a retry would start another cluster that fails the same way.
                status = cluster["Status"]
                raise dg.Failure(
                    f"{self.where()} {status['State']}: {_reason(status)}; step {step['Name']!r} {state}",
                    allow_retries=False,
                )
            time.sleep(self.poll_seconds)

    def _cluster(self) -> dict[str, Any]:
        return dict(self.emr.describe_cluster(ClusterId=self.cluster_id)["Cluster"])

    def step_metadata(self, step: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster()
        hours, cost = self.usage()
        metadata: dict[str, Any] = {
            "AWS EMR Cluster ID": self.cluster_id,
            "AWS EMR Cluster": dg.MetadataValue.url(console_url(self.region, str(self.cluster_id))),
            "AWS EMR Step ID": step["Id"],
            "AWS EMR Normalized Instance Hours": int(cluster.get("NormalizedInstanceHours", 0)),
            "run's EMR instance-hours so far": round(hours, 4),
            "run's EMR estimated cost so far": cost,
        }
        if cluster.get("LogUri"):
            metadata["AWS EMR Step Logs"] = dg.MetadataValue.path(self._step_logs(cluster["LogUri"], step["Id"]))
        return metadata

    def _step_logs(self, log_uri: str, step_id: str) -> str:
        return f"s3://{log_uri.split('://', 1)[1].rstrip('/')}/{self.cluster_id}/steps/{step_id}/"

    def _stderr_tail(self, step: dict[str, Any]) -> str:
        log_uri = self._cluster().get("LogUri")
        if not log_uri:
            return ""
        uri = f"{self._step_logs(log_uri, step['Id'])}stderr.gz"
        return stderr_tail(self.s3, uri, self.stderr_wait_seconds, self.poll_seconds)

    def terminate(self, log: Any) -> None:
        """End the run's cluster (the run has ended, however it ended); one already ended is left as it is."""
        if self.cluster_id is None or self._cluster()["Status"]["State"] not in ALIVE_STATES:
            return
        log.info(f"the run has ended: terminating {self.where()}")
        self.emr.terminate_job_flows(JobFlowIds=[self.cluster_id])

    def delete_pipes_objects(self) -> None:
        """What the run's Pipes readers left (a read that failed half-way): the run's folders, emptied."""
        for bucket, folder in sorted(self.pipes_folders):
            delete_folder(self.s3, bucket, folder)

    def usage(self) -> tuple[float, str]:
        """The instance-hours of every cluster the run started (from each one's creation to its end, or now:
        EMR bills by the second, a minute at least), and their estimated cost at `hourly_rates`."""
        hours, cost, unrated = 0.0, 0.0, set()
        for cluster_id in self.started:
            timeline = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["Timeline"]
            end = timeline.get("EndDateTime") or dt.datetime.now(dt.UTC)
            up = max((end - timeline["CreationDateTime"]).total_seconds(), 60) / 3600
            for group in self.emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]:
                instance_hours = up * group["RequestedInstanceCount"]
                hours += instance_hours
                if group["InstanceType"] in self.hourly_rates:
                    cost += instance_hours * self.hourly_rates[group["InstanceType"]]
                else:
                    unrated.add(group["InstanceType"])
        if unrated:
            return hours, f"unknown: no rate for {', '.join(sorted(unrated))} in TEEM_EMR_HOURLY_RATES"
        return hours, f"{cost:.2f} USD"

    def report(self, log: Any) -> dict[str, str]:
        """What the run's clusters cost, as run tags (the run's page shows them) and a line of its log."""
        if not self.started:
            return {}
        hours, cost = self.usage()
        log.info(f"EMR for this run: {', '.join(self.started)}, {hours:.3f} instance-hours, estimated {cost}")
        return {
            "teem/emr_clusters": ",".join(self.started),
            "teem/emr_instance_hours": f"{hours:.3f}",
            "teem/emr_estimated_cost": cost,
        }
