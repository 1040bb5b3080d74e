"""The pipeline's Spark stages as entry points over a data root and a small request (DESIGN §4, §12): no
Dagster here, so the same code runs in the Dagster process, under spark-submit and on an EMR cluster."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import SparkSession

from teem_assets.arrow_memory import release_arrow_memory
from teem_assets.data_root import DataRoot
from teem_assets.stages import aggregate, convert, maintain, migrate
from teem_assets.stages.report import StageReport, metadata
from teem_assets.stages.request import StageRequest

Stage = Callable[[SparkSession, DataRoot, StageRequest], StageReport]
STAGES: dict[str, Stage] = {
    "convert": convert.run,
    "migrate": migrate.run,
    "aggregate": aggregate.run,
    "maintain": maintain.run,
}


def run_stage(spark: SparkSession, request: StageRequest, root: DataRoot | None = None) -> StageReport:
    """Run one stage; `root` is the caller's open data root, else one built from the request."""
    if request.stage not in STAGES:
        raise ValueError(f"unknown stage {request.stage!r}: one of {', '.join(STAGES)}")
    try:
        report = STAGES[request.stage](spark, root or DataRoot(**request.root), request)
    finally:
        release_arrow_memory()
    versions = metadata(**engine_versions(spark))
    for materialization in report.materializations:
        materialization.metadata.update(versions)
    return report


def engine_versions(spark: SparkSession) -> dict[str, str]:
    """The Spark and Iceberg the stage ran on (on EMR, the release's own): each materialization names them."""
    iceberg = spark.sparkContext._jvm.org.apache.iceberg.IcebergBuild.version()
    return {"spark_version": spark.version, "iceberg_version": str(iceberg)}
