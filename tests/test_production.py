"""End to end as in production: `dagster dev` (webserver and daemon) with the data root on moto's S3 server;
unloads dropped into the bucket are picked up by the running sensors, materialized, and read back from
PostgreSQL; a backfill launched through GraphQL runs its range as one run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import sys
from pathlib import Path

import dagster as dg
import psycopg2
from dagster_ui import graphql_client, loaded_location
from servers import free_port, running, wait_for

from jobs.dead_runs import pools_held
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import FACTS
from teem_assets.runner import ensure_instance_settings
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.workers import PID_TAG

ROOT = Path(__file__).resolve().parents[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=2, seed=7)
DAYS = [d.isoformat() for d in SPEC.batch_dates]

START_SENSOR = """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
    __typename ... on Sensor { id sensorState { status } } ... on PythonError { message } } }"""
STOP_SENSOR = "mutation($id: String) { stopSensor(id: $id) { __typename } }"
RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
    runId jobName status tags { key value } } } } }"""
BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def _upload(s3, local: Path, relative: str) -> int:
    count = 0
    for path in sorted((local / relative).rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), "teem", f"warehouse/{path.relative_to(local).as_posix()}")
            count += 1
    return count


def test_unloads_dropped_into_s3_reach_postgres_and_a_backfill_is_one_run(
    tmp_path: Path, s3, s3_endpoint: str, postgres_url: str, pg_schema: str
) -> None:
    local = tmp_path / "sample"
    generate_sample(str(local), SPEC, UnloadOptions(manifest=True))
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "TEEM_ROOT": "s3://teem/warehouse",
        "TEEM_HOME": str(tmp_path / "teem"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_PG_SCHEMA": pg_schema,
        "TEEM_SENSOR_INTERVAL_SECONDS": "5",
        "TEEM_UNLOAD_SETTLE_SECONDS": "3600",  # only manifests complete an unload here
    }
    ensure_instance_settings(env["DAGSTER_HOME"])  # the deployment settings: pools, run retries, run monitoring

    graphql = graphql_client(port)

    def runs(job: str | None = None, tag: dict | None = None) -> list[dict]:
        found = graphql(RUNS, filter={"pipelineName": job} if job else {"tags": [tag]})["runsOrError"]["results"]
        return found

    def one_successful(job: str, partition: str | None = None) -> dict | None:
        found = [
            r for r in runs(job) if partition is None or {"key": "dagster/partition", "value": partition} in r["tags"]
        ]
        failed = [r for r in found if r["status"] in ("FAILURE", "CANCELED")]
        assert not failed, failed
        done = [r for r in found if r["status"] == "SUCCESS"]
        return done[0] if done else None

    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with running(command, env, str(ROOT), str(tmp_path / "dagster-dev.log")):
        location = loaded_location(graphql)
        repository = {"repositoryLocationName": location["name"],
                      "repositoryName": location["locationOrLoadError"]["repositories"][0]["name"]}  # fmt: skip
        sensor_ids = {}
        for sensor in ("snapshot_unload_sensor", "batch_unload_sensor"):
            started = graphql(START_SENSOR, selector={**repository, "sensorName": sensor})["startSensor"]
            assert started["__typename"] == "Sensor", started
            sensor_ids[sensor] = started["id"]

        assert _upload(s3, local, "csv/dim_company") and _upload(s3, local, "csv/dim_space")
        assert _upload(s3, local, "csv/dim_calendar") and _upload(s3, local, "csv/dim_date")
        wait_for(lambda: one_successful("snapshot_job"), 300, "the snapshot run", interval=3)

        for table in FACTS:
            _upload(s3, local, f"csv/{table.name}/incremental/{DAYS[0]}")
        wait_for(lambda: one_successful("batch_job", DAYS[0]), 400, "the sensor's batch run", interval=3)
        assert len(runs("batch_job")) == 1  # one complete unload, one run

        connection = psycopg2.connect(postgres_url)
        with connection, connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{pg_schema}".fact_event_by_day')
            keys = {row[10] for row in batch_rows(SPEC, "fact_event_by_day", SPEC.batch_dates[0])}
            assert cursor.fetchone()[0] == len(keys) > 0
            cursor.execute(f'SELECT count(*) FROM "{pg_schema}".agg_hourly_space')
            assert cursor.fetchone()[0] > 0
        connection.close()

        # the second day arrives with the sensor stopped: the backfill, not the sensor, runs it. Its first run's
        # worker (and the JVM it started) is SIGKILLed while it holds a pool, as a lost host ends it: the backfill
        # launched again from GraphQL still succeeds, as one run for both days. The code server that started the
        # worker may mark the run failed when it sees its process die, but its slots would stay held for run
        # monitoring's free_slots_after_run_end_seconds (300 s); dead_run_sensor, or the next run before it
        # waits, frees them (and ends the run, when the code server has not yet), naming the worker.
        assert graphql(STOP_SENSOR, id=sensor_ids["batch_unload_sensor"])["stopSensor"]["__typename"] != "PythonError"
        for table in FACTS:
            _upload(s3, local, f"csv/{table.name}/incremental/{DAYS[1]}")
        keys = [{"path": ["parquet", t.name]} for t in FACTS] + [{"path": ["migrated", t.name]} for t in FACTS]
        keys += [{"path": ["postgres", t.name]} for t in FACTS]
        keys += [{"path": [layer, name]} for name in AGGREGATES for layer in ("aggregates", "postgres")]
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])

        def launch(days: list[str]) -> dict:
            found = graphql(BACKFILL, params={"assetSelection": keys, "partitionNames": days})
            assert found["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", found
            return {"key": "dagster/backfill", "value": found["launchPartitionBackfill"]["backfillId"]}

        def backfill_done(tag: dict) -> list[dict] | None:
            found = runs(tag=tag)
            return found if found and all(r["status"] in ("SUCCESS", "FAILURE") for r in found) else None

        def holding_a_pool(tag: dict) -> dict | None:
            found = [r for r in runs(tag=tag) if r["status"] == "STARTED"]
            return found[0] if found and pools_held(instance, found[0]["runId"]) else None

        first_tag = launch(DAYS)
        doomed = wait_for(lambda: holding_a_pool(first_tag), 400, "the run to hold a pool", interval=0.2)
        worker = int({t["key"]: t["value"] for t in doomed["tags"]}[PID_TAG])
        for pid in _descendants(worker):
            with contextlib.suppress(ProcessLookupError):  # a short-lived child (a `ps`, a probe) ended first
                os.kill(pid, signal.SIGKILL)
        next_tag = launch(DAYS)
        after = wait_for(lambda: backfill_done(next_tag), 600, "the backfill after the killed one", interval=3)
        assert [r["status"] for r in after] == ["SUCCESS"]  # two days, one run
        tags = {t["key"]: t["value"] for t in after[0]["tags"]}
        assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == tuple(DAYS)
        assert instance.get_run_by_id(doomed["runId"]).status == dg.DagsterRunStatus.FAILURE
        assert doomed["runId"] not in instance.event_log_storage.get_concurrency_run_ids()
        gone = f"its worker, process {worker} on {socket.gethostname()}, no longer exists"
        sensor_said = [
            line
            for line in (tmp_path / "dagster-dev.log").read_text().splitlines()
            if "dead_run_sensor" in line and f"run {doomed['runId']}: " in line and gone in line
        ]
        next_run_said = [
            e.message
            for e in instance.all_logs(after[0]["runId"])
            if f"ended run {doomed['runId']}: " in (e.message or "") and gone in e.message
        ]
        assert sensor_said or next_run_said
        instance.dispose()
