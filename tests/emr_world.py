"""moto's AWS in the test's own process (ThreadedMotoServer on loopback), so that a test can also play the
part of EMR itself: moto starts clusters but never runs their steps (DESIGN §11), and a test says how a step
ended by setting it in moto's EMR backend, or has `PlayingEmr` run each step as a cluster would."""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import Step, emr_backends
from moto.server import ThreadedMotoServer
from servers import free_port

REGION = "us-east-1"
ARCHIVE_URI = "s3://teem-artifacts/packages/teem-cluster.tar.gz"
ARCHIVE_SHA256 = hashlib.sha256(b"archive").hexdigest()
# Credentials that must never appear in a request, a log line or metadata.
CANARY_KEY_ID = "teem-canary-key-id"
CANARY_SECRET = "teem-canary-secret-never-logged"


@dataclass
class MotoAws:
    endpoint: str

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def active_clusters(self) -> list[dict]:
        states = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
        return self.client("emr").list_clusters(ClusterStates=states)["Clusters"]

    def wait_for_cluster(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            clusters = self.active_clusters()
            if clusters:
                return clusters[0]["Id"]
            time.sleep(0.2)
        raise TimeoutError("no EMR cluster was started")

    def wait_for_step(self, cluster_id: str, timeout: float = 120) -> dict:
        """The cluster's first step, once the run added it."""
        emr, deadline = self.client("emr"), time.monotonic() + timeout
        while time.monotonic() < deadline:
            steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
            if steps:
                return steps[-1]
            time.sleep(0.2)
        raise TimeoutError(f"no step was added to {cluster_id}")

    def fail_step(self, cluster_id: str, reason: str) -> None:
        """What EMR does when a step's driver exits non-zero."""
        step = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id].steps[0]
        step.state = "FAILED"
        step.last_state_change_reason = reason

    def fail_bootstrap(self, cluster_id: str, reason: str) -> None:
        """What EMR does when a bootstrap action exits non-zero: the steps cancelled, the cluster ended."""
        cluster = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id]
        for step in cluster.steps:
            step.state = "CANCELLED"
        cluster.last_state_change_reason = reason
        cluster.terminate()
        cluster.state = "TERMINATED_WITH_ERRORS"

    def complete_step(self, cluster_id: str, instance_hours: int) -> None:
        """What EMR does when a step's driver exits 0: the cluster waits for the next."""
        cluster = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id]
        cluster.steps[-1].state = "COMPLETED"
        cluster.normalized_instance_hours = instance_hours
        cluster.state = "WAITING"

    def cluster_state(self, cluster_id: str) -> str:
        return self.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


@contextlib.contextmanager
def moto_aws() -> Iterator[MotoAws]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = MotoAws(f"http://{host}:{port}")
        requests.post(f"{aws.endpoint}/moto-api/reset", timeout=10)  # moto's state is the process's, not the server's
        s3 = aws.client("s3")
        for bucket in ("teem", "teem-artifacts", "teem-logs"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="teem-artifacts", Key="packages/teem-cluster.tar.gz", Body=b"archive")
        s3.put_object(Bucket="teem-artifacts", Key="packages/teem-cluster.tar.gz.sha256", Body=f"{ARCHIVE_SHA256}\n")
        s3.put_object(Bucket="teem-artifacts", Key="packages/teem-cluster.tar.gz.bootstrap.sh", Body=b"#!/bin/bash")
        yield aws
    finally:
        server.stop()


def step_environment(args: list[str]) -> dict[str, str]:
    """The variables a step's `env NAME=value ... command` sets for its command alone."""
    assert args[0] == "env", args
    variables = []
    for arg in args[1:]:
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", arg):
            break  # env's command starts here
        variables.append(arg.split("=", 1))
    return dict(variables)


StepRunner = Callable[[str, Step], None]


class PlayingService(threading.Thread):
    """An AWS service's part played in the background while inside: `play_waiting()` runs what waits."""

    def __init__(self, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self._done = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(30)

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.play_waiting()

    def play_waiting(self) -> None:
        raise NotImplementedError


class PlayingEmr(PlayingService):
    """EMR running the steps of every cluster on moto, one at a time in the order they were added, as a
    cluster does: `run(cluster_id, step)` is the step's work (raising fails the step with its message)."""

    def __init__(self, run: StepRunner) -> None:
        super().__init__("playing-emr")
        self._run = run
        self.ran: list[tuple[str, str]] = []  # (cluster id, step name) of every step run

    def play_waiting(self) -> None:
        for cluster in list(emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters.values()):
            waiting = [s for s in cluster.steps if s.state in ("PENDING", "RUNNING")]
            if cluster.state in ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING") and waiting:
                self._play(cluster, waiting[0])

    def _play(self, cluster, step: Step) -> None:
        step.state, cluster.state = "RUNNING", "RUNNING"
        self.ran.append((cluster.id, step.name))
        try:
            self._run(cluster.id, step)
            step.state = "COMPLETED"
        except Exception as error:  # the step's failure, as EMR records a driver's exit
            step.state, step.last_state_change_reason = "FAILED", f"{error}\n{traceback.format_exc()[-2000:]}"
        if cluster.state == "RUNNING":
            cluster.state = "WAITING"
