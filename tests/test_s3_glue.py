"""The pipeline with its data root on S3 and its tables in AWS Glue (moto's server on loopback): every stage
run as a worker with an empty TEEM_HOME equals the local-folder run value by value; Glue holds the tables
Athena reads; pyiceberg reads the same rows as Spark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import psycopg2
import pytest
from conftest import SAMPLE_DAYS
from tables import iceberg, iceberg_rows, sorted_rows

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES
from teem_assets.iceberg import CatalogSettings, use_catalog
from teem_assets.migration import CREATED_DATE

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
def test_every_stage_on_s3_with_glue_on_fresh_workers_equals_the_local_run(
    loaded, sample_root, s3, s3_endpoint, postgres_url, pg_schema, tmp_path, spark
):
    local_root, local_schema, _ = loaded
    _upload(s3, sample_root)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "TEEM_ROOT": S3_ROOT,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_PG_SCHEMA": pg_schema,
    }
    for number, (selection, dates) in enumerate(STAGES):
        _stage(selection, dates, env, tmp_path / f"worker-{number}")
    # the dimension exports again, alone, on yet another fresh worker and into a schema of their own
    _stage("key:postgres/dim_*", [], {**env, "TEEM_PG_SCHEMA": pg_schema + "_again"}, tmp_path / "worker-again")

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
    for database, tables in (("migrated", TABLES), ("aggregates", AGGREGATES)):
        found = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
        assert set(found) == set(tables)
        for name, table in tables.items():
            assert found[name]["Parameters"]["table_type"].upper() == "ICEBERG"
            columns = [(c["Name"], c["Type"]) for c in found[name]["StorageDescriptor"]["Columns"]]
            expected = [(c.name, glue_type(c.type.sql)) for c in table.columns]
            if database == "migrated":
                expected.append((CREATED_DATE, "date"))
            assert columns == expected, name
            partition = "created_date" if database == "migrated" else table.partition_column
            spec = iceberg(S3_ROOT, database, name, s3_endpoint).spec()
            assert [(f.name, str(f.transform)) for f in spec.fields] == [(partition, "identity")]

    # Spark, through the same Glue catalog, reads what pyiceberg reads
    catalog = use_catalog(spark, CatalogSettings(S3_ROOT, aws_endpoint_url=s3_endpoint, aws_region="us-east-1"))
    events = spark.table(f"{catalog}.migrated.fact_event_by_day").collect()
    assert sorted((tuple(r) for r in events), key=repr) == sorted_rows(
        iceberg_rows(S3_ROOT, "migrated", "fact_event_by_day", s3_endpoint)
    )
