"""The stages sent with spark-submit, their results back through Dagster Pipes: on a Spark standalone cluster
(a master and a worker whose clock is in Los Angeles) with the data root on S3 (moto), the 14-day sample
gives the in-process run's tables value by value; and a stage's messages cross S3 as they do from EMR."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from conftest import SAMPLE_DAYS
from servers import spark_standalone_cluster
from tables import iceberg_rows, sorted_rows
from test_s3_glue import S3_ROOT, _postgres_rows, _upload

from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.conventions import Placement
from teem_assets.assets.parquet import parquet_assets
from teem_assets.catalogue import TABLES
from teem_assets.settings import Settings

# The snapshot conversion as the code location makes it, its metadata from the default settings.
parquet_snapshots = parquet_assets(Placement.of(Settings()))[0]

ROOT = Path(__file__).resolve().parents[1]
FIRST, LAST = SAMPLE_DAYS[0], SAMPLE_DAYS[-1]


def _snapshots(resources: dict) -> dict[str, dict[str, object]]:
    result = dg.materialize(
        [parquet_snapshots], resources={**resources, "thresholds": CheckThresholds()}, raise_on_error=False
    )
    assert result.success
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        found[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
    for evaluation in result.get_asset_check_evaluations():
        found[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = {"passed": evaluation.passed}
    return found


@pytest.mark.slow
def test_a_stage_under_spark_submit_reports_through_pipes_messages_on_s3(sample_root, s3, s3_endpoint, tmp_path):
    _upload(s3, sample_root)
    on_s3 = StorageResource(root=S3_ROOT, aws_endpoint_url=s3_endpoint, aws_region="us-east-1")
    submitted = _snapshots({"spark": SparkResource(where="local[2]", messages_bucket="teem"), "storage": on_s3})
    messages = [o["Key"] for o in s3.list_objects_v2(Bucket="teem").get("Contents", []) if o["Key"].endswith(".json")]
    assert any(not key.startswith("root/") for key in messages)  # the driver's chunks of Pipes messages
    folder = StorageResource(root=str(sample_root))
    in_process = _snapshots({"spark": SparkResource(), "storage": folder})
    assert set(submitted) == set(in_process) and len(submitted) == 8  # 4 tables, 4 shrink checks
    for key, values in in_process.items():
        for name in ("dagster/row_count", "rows_read", "rows_quarantined", "files", "bytes", "passed"):
            if name in values:
                assert submitted[key][name] == values[name], (key, name)
        if "dagster/row_count" in values:
            assert values["dagster/row_count"] > 0
            assert submitted[key]["preview"] == values["preview"]
            assert submitted[key]["path"].startswith(S3_ROOT)


@pytest.mark.slow
def test_the_sample_on_a_standalone_cluster_with_s3_equals_the_in_process_run(
    loaded, sample_root, s3, s3_endpoint, postgres_url, pg_schema, tmp_path
):
    local_root, local_schema, _ = loaded
    _upload(s3, sample_root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    with spark_standalone_cluster(str(tmp_path), env, worker_tz="America/Los_Angeles") as master:
        child = {
            **env,
            "TEEM_SPARK": master,
            "TEEM_ROOT": S3_ROOT,
            "TEEM_HOME": str(tmp_path / "teem"),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "TEEM_POSTGRES_URL": postgres_url,
            "TEEM_PG_SCHEMA": pg_schema,
        }
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "stage_child.py"), "job:migration_job", FIRST, LAST],
            env=child, cwd=str(tmp_path), capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        print(f"migration_job on {master}: {time.monotonic() - started:.0f} s")
        assert completed.returncode == 0, f"{completed.stdout[-4000:]}\n{completed.stderr[-8000:]}"
    # every Spark stage ran as an application of the cluster, its executors on the Los Angeles worker
    applications = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(applications) == 5, applications  # convert x2, migrate x2, aggregate

    for name, table in TABLES.items():
        columns = list(table.column_names)
        on_s3 = iceberg_rows(S3_ROOT, "migrated", name, s3_endpoint)
        assert on_s3.num_rows > 0
        assert sorted_rows(on_s3) == sorted_rows(iceberg_rows(local_root, "migrated", name)), name
        assert _postgres_rows(postgres_url, pg_schema, name, columns) == sorted_rows(on_s3, columns)
    for name, aggregate in AGGREGATES.items():
        columns = list(aggregate.column_names)
        on_s3 = iceberg_rows(S3_ROOT, "aggregates", name, s3_endpoint)
        assert on_s3.num_rows > 0
        assert sorted_rows(on_s3) == sorted_rows(iceberg_rows(local_root, "aggregates", name)), name
        assert _postgres_rows(postgres_url, pg_schema, name, columns) == _postgres_rows(
            postgres_url, local_schema, name, columns
        )
