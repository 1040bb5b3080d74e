"""S3 and Glue throttling is transient: with one request in five answered SlowDown (S3) or ThrottlingException
(Glue), as AWS answers a busy prefix or account, every client of the run (Spark's S3A, Iceberg's S3FileIO and
Glue catalog, pyarrow, boto3) retries, and the run ends in exactly the local run's tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_DAYS
from tables import iceberg_rows, sorted_rows
from test_s3_glue import S3_ROOT, _postgres_rows, _upload
from throttling_proxy import ThrottlingProxy

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES

ROOT = Path(__file__).resolve().parents[1]
# The run's S3 and Glue clients, by User-Agent: pyarrow, boto3, Iceberg's Glue catalog (AWS SDK v2) and S3FileIO,
# Spark's S3A.
CLIENTS = ("aws-sdk-cpp", "Boto3", "aws-sdk-java/2", "s3fileio", "Hadoop S3A")


@pytest.mark.slow
def test_a_run_throttled_by_s3_and_glue_ends_in_the_local_runs_tables(
    loaded, sample_root, s3, s3_endpoint, postgres_url, pg_schema, tmp_path
):
    local_root, local_schema, _ = loaded
    _upload(s3, sample_root)
    proxy = ThrottlingProxy(s3_endpoint, every=5)
    home = tmp_path / "worker"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "AWS_ENDPOINT_URL": proxy.url,
        "TEEM_ROOT": S3_ROOT,
        "TEEM_HOME": str(home),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_PG_SCHEMA": pg_schema,
    }
    try:
        completed = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "stage_child.py"),
                "job:migration_job",
                SAMPLE_DAYS[0],
                SAMPLE_DAYS[-1],
            ],
            env=env,
            cwd=str(home),
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        proxy.close()
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-6000:]
    assert proxy.throttled["s3"] > 20 and proxy.throttled["glue"] > 5, proxy.throttled
    # each of them met throttling (the first of each of its kinds of request, at least) and retried
    assert set(proxy.clients) >= set(CLIENTS), proxy.clients

    for database, tables in (("migrated", TABLES), ("aggregates", AGGREGATES)):
        for name, table in tables.items():
            columns = list(table.column_names)
            on_s3 = iceberg_rows(S3_ROOT, database, name, s3_endpoint)
            assert on_s3.num_rows > 0
            assert sorted_rows(on_s3) == sorted_rows(iceberg_rows(local_root, database, name)), name
            in_postgres = _postgres_rows(postgres_url, pg_schema, name, columns)
            assert in_postgres == _postgres_rows(postgres_url, local_schema, name, columns), name
