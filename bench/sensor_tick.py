"""One tick of batch_unload_sensor with 10,000 keys under csv/<fact>/incremental/, against moto's S3 server
on loopback, beside its floor: a bare boto3 listing of the same keys. Medians of 3 ticks.
Usage: python bench/sensor_tick.py [--keys 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
import dagster as dg
import requests
from dagster_aws.s3 import S3Resource

from jobs.sensors import batch_unload_sensor
from resources.storage import StorageResource
from tests.servers import free_port, running, wait_for

PARTS_PER_UNLOAD = 49  # + a manifest: 50 keys per table and day


def _fill(client, keys: int) -> int:
    names = []
    day = 0
    while len(names) < keys:
        date = f"2019-{9 + day // 28:02d}-{1 + day % 28:02d}"
        for table in ("fact_event_by_day", "fact_attendance"):
            folder = f"warehouse/csv/{table}/incremental/{date}"
            names += [f"{folder}/{table}_{n:04d}_part_00" for n in range(PARTS_PER_UNLOAD)]
            names.append(f"{folder}/{table}_manifest")
        day += 1
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket="teem", Key=key, Body=b""), names[:keys]))
    return day


def _median_seconds(action, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", TEEM_UNLOAD_SETTLE_SECONDS="3600")  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        moto = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        with running(moto, dict(os.environ), work, os.path.join(work, "moto.log")):
            wait_for(lambda: requests.get(endpoint, timeout=2).ok, 60, "moto's S3 server")
            client = boto3.client("s3")
            client.create_bucket(Bucket="teem")
            days = _fill(client, args.keys)
            resources = {"storage": StorageResource(root="s3://teem/warehouse"), "s3": S3Resource()}

            def tick() -> None:
                result = batch_unload_sensor(dg.build_sensor_context(resources=resources))
                assert len(result.run_requests) == days, len(result.run_requests)

            def listing() -> None:
                pages = client.get_paginator("list_objects_v2").paginate(Bucket="teem", Prefix="warehouse/csv/")
                assert sum(len(p.get("Contents", [])) for p in pages) == args.keys

            sensor, floor = _median_seconds(tick), _median_seconds(listing)
    print(f"{args.keys:,} keys, {days} batch dates, moto's S3 server on loopback, medians of 3")
    print(f"  sensor tick (two prefixes listed, completeness, fingerprints): {sensor:.2f} s")
    print(f"  boto3 listing of the same keys alone (the floor):             {floor:.2f} s")
    print(f"  ratio tick / floor: {sensor / floor:.2f}x")


if __name__ == "__main__":
    main()
