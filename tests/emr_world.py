"""moto's AWS in the test's own process (ThreadedMotoServer on loopback), so that a test can also play the
part of EMR itself: moto starts clusters but never runs their steps (DESIGN §11), and a test says how a step
ended by setting it in moto's EMR backend."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends
from moto.server import ThreadedMotoServer
from servers import free_port

REGION = "us-east-1"
ARCHIVE_URI = "s3://teem-artifacts/packages/teem-cluster.tar.gz"
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

    def finish_cluster(self, cluster_id: str, instance_hours: int) -> None:
        """What EMR does when the cluster's last step completed and it has no more work."""
        cluster = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id]
        cluster.steps[0].state = "COMPLETED"
        cluster.normalized_instance_hours = instance_hours
        cluster.last_state_change_reason = "Steps completed"
        cluster.terminate()

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
        s3.put_object(Bucket="teem-artifacts", Key="packages/teem-cluster.tar.gz.bootstrap.sh", Body=b"#!/bin/bash")
        yield aws
    finally:
        server.stop()
