from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from resources.spark import build_spark_session
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec

SAMPLE_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=14, seed=7)
# Small parts, so every table has `_part_01` splits, and gzip, as Redshift writes with GZIP.
SAMPLE_OPTIONS = UnloadOptions(slices=2, max_file_size=64 * 1024, gzip=True)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = build_spark_session("teem-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate_sample(str(root), SAMPLE_SPEC, SAMPLE_OPTIONS)
    return root


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TEEM_TEST_POSTGRES_URL, else the project's embedded server in a folder of the test session."""
    import os

    url = os.environ.get("TEEM_TEST_POSTGRES_URL")
    if url:
        return url
    import pgserver

    return pgserver.get_server(tmp_path_factory.mktemp("pgdata")).get_uri()


@pytest.fixture
def pg_schema(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema of the test's own, dropped afterwards."""
    import re

    import psycopg2

    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:50]
    yield name
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    connection.close()
