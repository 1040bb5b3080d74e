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
