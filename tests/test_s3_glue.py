"""Production's shape in one run: the data root on S3 and the tables in AWS Glue (moto's server on loopback),
every stage a worker with an empty TEEM_HOME that sends its Spark work to a standalone cluster (a master and a
worker whose clock is in Los Angeles), and S3 and Glue throttling as AWS does under load (every client's first
request of each kind, and one in twenty of the rest, answered SlowDown or ThrottlingException). Every client
retries, and the tables equal the local-folder run value by value; Glue holds the tables Athena reads; pyiceberg
reads the same rows as Spark. Also: a stage under spark-submit reports through Pipes messages on S3, as it does
from EMR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import dagster as dg
import psycopg2
import pytest
from conftest import SAMPLE_DAYS, moto_server
from servers import spark_standalone_cluster
from tables import iceberg, iceberg_rows, sorted_rows
from throttling_proxy import ThrottlingProxy

from resources.spark import SparkResource
from resources.storage import StorageResource
from resources.thresholds import CheckThresholds
from teem_assets import layout
from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.conventions import Placement
from teem_assets.assets.parquet import parquet_assets
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import CatalogSettings, ForeignLocation, use_catalog
from teem_assets.layout import default_databases
from teem_assets.migration import CREATED_DATE, ensure_migrated_table
from teem_assets.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
S3_ROOT = "s3://teem/root"
FIRST, LAST = SAMPLE_DAYS[0], SAMPLE_DAYS[-1]
# Glue's column types of an Iceberg table, by the catalogue's Redshift types (Iceberg has no smallint, and
# Redshift's char/varchar are strings).
GLUE_TYPES = {"smallint": "int", "integer": "int", "int": "int", "bigint": "bigint", "real": "float",
              "double precision": "double", "boolean": "boolean", "date": "date", "timestamp": "timestamp",
              "timestamptz": "timestamp"}  # fmt: skip
STAGES = [
    ("key:parquet/dim_*", []),
    ("key:migrated/dim_*", []),
    ("key:postgres/dim_*", []),
    ("key:parquet/fact_*", [FIRST, LAST]),
    ("key:migrated/fact_*", [FIRST, LAST]),
    ("key:postgres/fact_*", [FIRST, LAST]),
    ("key:aggregates/*", [FIRST, LAST]),
    ("key:postgres/agg_hourly_space or key:postgres/week_people_count", [FIRST, LAST]),
]
# The Spark applications: a conversion and a migration each of the dimensions and the facts, the aggregates.
SPARK_STAGES = 5
# The run's S3 and Glue clients, by User-Agent: pyarrow, boto3, Iceberg's Glue catalog (AWS SDK v2) and S3FileIO,
# Spark's S3A.
CLIENTS = ("aws-sdk-cpp", "Boto3", "aws-sdk-java/2", "s3fileio", "Hadoop S3A")
# The snapshot conversion as the code location makes it, its metadata from the default settings.
parquet_snapshots = parquet_assets(Placement.of(Settings()))[0]


def glue_type(sql_type: str) -> str:
    if sql_type.startswith(("varchar", "char", "character")):
        return "string"
    if sql_type.startswith(("decimal", "numeric")):
        return sql_type.replace("numeric", "decimal").replace(" ", "")
    return GLUE_TYPES[sql_type]


def _upload(s3, local: Path) -> None:
    for path in sorted((local / "csv").rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), "teem", f"root/{path.relative_to(local).as_posix()}")


def _stage(selection: str, dates: list[str], env: dict[str, str], home: Path) -> None:
    """One stage in a process of its own, with a TEEM_HOME nothing has used."""
    home.mkdir(parents=True)
    completed = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "stage_child.py"), selection, *dates],
        env={**env, "TEEM_HOME": str(home)},
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, f"{selection} {dates}:\n{completed.stdout[-4000:]}\n{completed.stderr[-6000:]}"


def _postgres_rows(url: str, schema: str, name: str, columns: list[str]) -> list[tuple]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT {", ".join(columns)} FROM "{schema}"."{name}"')
        rows = cursor.fetchall()
    connection.close()
    return sorted(rows, key=repr)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_stage_on_fresh_workers_on_a_cluster_throttled_by_s3_and_glue_equals_the_local_run(
    loaded, sample_root, s3, s3_endpoint, postgres_url, pg_schema, tmp_path, spark
):
    local_root, local_schema, _ = loaded
    _upload(s3, sample_root)
    # One in twenty: every client meets throttling with its first request of each kind anyway; one in five spent
    # some 200 s of this test in the clients' back-off (pyarrow's alone 175 s, over 324 throttled requests).
    proxy = ThrottlingProxy(s3_endpoint, every=20)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "AWS_ENDPOINT_URL": proxy.url,
    }
    try:
        with spark_standalone_cluster(str(tmp_path), env, worker_tz="America/Los_Angeles") as master:
            env = {
                **env,
                "TEEM_SPARK": master,
                "TEEM_ROOT": S3_ROOT,
                "DAGSTER_HOME": str(tmp_path / "dagster"),
                "TEEM_POSTGRES_URL": postgres_url,
                "TEEM_PG_SCHEMA": pg_schema,
            }
            for number, (selection, dates) in enumerate(STAGES):
                _stage(selection, dates, env, tmp_path / f"worker-{number}")
            # the dimension exports again, alone, on yet another fresh worker and into a schema of their own
            again = {**env, "TEEM_PG_SCHEMA": pg_schema + "_again"}
            _stage("key:postgres/dim_*", [], again, tmp_path / "worker-again")
    finally:
        proxy.close()
    assert proxy.throttled["s3"] > 20 and proxy.throttled["glue"] > 5, proxy.throttled
    # each of them met throttling (the first of each of its kinds of request, at least) and retried
    assert set(proxy.clients) >= set(CLIENTS), proxy.clients
    # every Spark stage ran as an application of the cluster, its executors on the Los Angeles worker
    applications = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(applications) == SPARK_STAGES, applications

    for name, table in TABLES.items():
        columns = list(table.column_names)
        on_s3 = iceberg_rows(S3_ROOT, "migrated", name, s3_endpoint)
        assert on_s3.num_rows > 0
        assert sorted_rows(on_s3) == sorted_rows(iceberg_rows(local_root, "migrated", name)), name
        in_postgres = _postgres_rows(postgres_url, pg_schema, name, columns)
        assert in_postgres == _postgres_rows(postgres_url, local_schema, name, columns) == sorted_rows(on_s3, columns)
        if table.is_dimension:
            assert _postgres_rows(postgres_url, pg_schema + "_again", name, columns) == in_postgres
    for name, aggregate in AGGREGATES.items():
        columns = list(aggregate.column_names)
        on_s3 = iceberg_rows(S3_ROOT, "aggregates", name, s3_endpoint)
        assert on_s3.num_rows > 0
        assert sorted_rows(on_s3) == sorted_rows(iceberg_rows(local_root, "aggregates", name)), name
        assert _postgres_rows(postgres_url, pg_schema, name, columns) == sorted_rows(on_s3, columns)

    glue = boto3.client("glue", endpoint_url=s3_endpoint, region_name="us-east-1")
    databases = dict(zip(("migrated", "aggregates"), default_databases(S3_ROOT), strict=True))
    assert databases == {"migrated": "teem_root_migrated", "aggregates": "teem_root_aggregates"}
    for layer, tables in (("migrated", TABLES), ("aggregates", AGGREGATES)):
        found = {t["Name"]: t for t in glue.get_tables(DatabaseName=databases[layer])["TableList"]}
        assert set(found) == set(tables)
        for name, table in tables.items():
            assert found[name]["Parameters"]["table_type"].upper() == "ICEBERG"
            columns = [(c["Name"], c["Type"]) for c in found[name]["StorageDescriptor"]["Columns"]]
            expected = [(c.name, glue_type(c.type.sql)) for c in table.columns]
            if layer == "migrated":
                expected.append((CREATED_DATE, "date"))
            assert columns == expected, name
            location = found[name]["StorageDescriptor"]["Location"]  # where the asset's dagster/uri says
            assert location == layout.iceberg_table(S3_ROOT, databases[layer], name), name
            partition = "created_date" if layer == "migrated" else table.partition_column
            spec = iceberg(S3_ROOT, layer, name, s3_endpoint).spec()
            assert [(f.name, str(f.transform)) for f in spec.fields] == [(partition, "identity")]

    # Spark, through the same Glue catalog, reads what pyiceberg reads
    catalog = use_catalog(spark, CatalogSettings(S3_ROOT, aws_endpoint_url=s3_endpoint, aws_region="us-east-1"))
    events = spark.table(f"{catalog}.{databases['migrated']}.fact_event_by_day").collect()
    assert sorted((tuple(r) for r in events), key=repr) == sorted_rows(
        iceberg_rows(S3_ROOT, "migrated", "fact_event_by_day", s3_endpoint)
    )


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
    # the results below came back only through S3 (the reader of a messages bucket reads nothing else), and
    # the driver's chunks were deleted once read: none is left anywhere in the bucket
    left = [o["Key"] for o in s3.list_objects_v2(Bucket="teem").get("Contents", []) if not o["Key"].startswith("root/")]
    assert left == []
    folder = StorageResource(root=str(sample_root))
    in_process = _snapshots({"spark": SparkResource(), "storage": folder})
    assert set(submitted) == set(in_process) and len(submitted) == 16  # 4 tables; shrink, stale-part, rules checks
    for key, values in in_process.items():
        for name in ("dagster/row_count", "rows_read", "rows_quarantined", "files", "bytes", "passed"):
            if name in values:
                assert submitted[key][name] == values[name], (key, name)
        if "dagster/row_count" in values:
            assert values["dagster/row_count"] > 0
            assert submitted[key]["preview"] == values["preview"]
            assert submitted[key]["path"].startswith(S3_ROOT)


def test_aws_endpoint_url_s3_alone_sends_s3_there_and_every_other_service_to_aws_endpoint_url(
    sample_root, s3_endpoint, tmp_path, monkeypatch, postgres_url, pg_schema, spark
):
    """S3 at one place (MinIO, a VPC endpoint) and Glue at another: AWS_ENDPOINT_URL_S3 names the S3 server,
    AWS_ENDPOINT_URL (a second moto server, with a state of its own) every other service. The snapshot job goes
    through both from Python (pyarrow, pyiceberg, boto3) and the JVM (S3A, Iceberg's S3FileIO and Glue client):
    every object on the first server, every Glue table on the second, nothing crossed over."""
    bucket, region = "teem-endpoints", "us-east-1"
    with moto_server(tmp_path) as other_services:
        for name, value in (("AWS_ENDPOINT_URL", other_services), ("AWS_ENDPOINT_URL_S3", s3_endpoint),
                            ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", region), ("TEEM_ROOT", f"s3://{bucket}/root"),
                            ("TEEM_HOME", str(tmp_path / "home")), ("TEEM_POSTGRES_URL", postgres_url),
                            ("TEEM_PG_SCHEMA", pg_schema)):  # fmt: skip
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=region)
        s3.create_bucket(Bucket=bucket)
        for path in sorted((sample_root / "csv").rglob("*")):
            if path.is_file() and "/snapshot/" in path.as_posix():
                s3.upload_file(str(path), bucket, f"root/{path.relative_to(sample_root).as_posix()}")
        from teem_assets.definitions import build_definitions

        result = build_definitions().resolve_job_def("snapshot_job").execute_in_process(raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]

        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p["Contents"]]
        assert any(k.startswith("root/parquet/dim_space/") for k in keys)
        assert any(k.startswith("root/warehouse/") and k.endswith(".metadata.json") for k in keys)
        migrated, _ = default_databases(f"s3://{bucket}/root")
        glue = boto3.client("glue", endpoint_url=other_services, region_name=region)
        tables = glue.get_tables(DatabaseName=migrated)["TableList"]
        assert {t["Name"] for t in tables} == {t.name for t in TABLES.values() if t.is_dimension}
        for table in tables:
            metadata = table["Parameters"]["metadata_location"].removeprefix(f"s3://{bucket}/")
            assert metadata in keys, metadata  # the JVM's commit: its file on the S3 server, its table here
        assert boto3.client("s3", endpoint_url=other_services, region_name=region).list_buckets()["Buckets"] == []
        on_s3_server = boto3.client("glue", endpoint_url=s3_endpoint, region_name=region)
        assert migrated not in {d["Name"] for d in on_s3_server.get_databases()["DatabaseList"]}
        rows = {
            e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata[
                "dagster/row_count"
            ].value
            for e in result.get_asset_materialization_events()
        }
        # pyiceberg read the table through the Glue server and its files through the S3 server, into PostgreSQL
        exported = _postgres_rows(postgres_url, pg_schema, "dim_space", ["space_pk"])
        assert len(exported) == rows["migrated/dim_space"] == rows["postgres/dim_space"] > 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in page["Contents"]]})
        s3.delete_bucket(Bucket=bucket)


def test_two_roots_in_one_glue_account_share_no_table_and_a_foreign_location_is_refused(s3, s3_endpoint, spark):
    """Two deployments' roots in one AWS account, default settings: each writes its own Glue databases. A
    database made by hand with a location elsewhere, or another root's table reached through a database name
    set to that root's, is refused (naming both places) before anything is written."""
    aws = {"aws_endpoint_url": s3_endpoint, "aws_region": "us-east-1"}
    staging, production = DataRoot("s3://teem/staging", **aws), DataRoot("s3://teem/production", **aws)
    dates = TABLES["dim_date"]
    for root in (staging, production):
        ensure_migrated_table(spark, dates, root.migrated_table(spark, dates.name))
    glue = boto3.client("glue", endpoint_url=s3_endpoint, region_name="us-east-1")
    locations = {
        root.root: glue.get_table(DatabaseName=root.migrated_database, Name=dates.name)["Table"]["StorageDescriptor"][
            "Location"
        ]
        for root in (staging, production)
    }
    assert staging.migrated_database != production.migrated_database
    assert all(location.startswith(f"{root}/warehouse/") for root, location in locations.items()), locations

    by_hand = DataRoot("s3://teem/by-hand", **aws)
    glue.create_database(DatabaseInput={"Name": by_hand.migrated_database, "LocationUri": "s3://teem/elsewhere"})
    with pytest.raises(ForeignLocation, match=r"s3://teem/elsewhere.*s3://teem/by-hand/warehouse"):
        by_hand.migrated_table(spark, dates.name)

    borrowing = DataRoot("s3://teem/borrowing", migrated_database=production.migrated_database, **aws)
    before = glue.get_table(DatabaseName=production.migrated_database, Name=dates.name)["Table"]
    with pytest.raises(ForeignLocation, match=r"s3://teem/production/warehouse.*s3://teem/borrowing/warehouse"):
        ensure_migrated_table(spark, dates, borrowing.migrated_table(spark, dates.name))
    with pytest.raises(ForeignLocation, match="s3://teem/production/warehouse"):
        borrowing.iceberg_table(borrowing.migrated_database, dates.name)
    after = glue.get_table(DatabaseName=production.migrated_database, Name=dates.name)["Table"]
    assert after["Parameters"] == before["Parameters"]  # the other root's table untouched
    assert not [o for o in s3.list_objects_v2(Bucket="teem", Prefix="borrowing/").get("Contents", [])]
