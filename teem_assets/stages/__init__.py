"""The pipeline's Spark stages as entry points over a data root and a small request (DESIGN §4, §12): no
Dagster here, so the same code runs in the Dagster process, under spark-submit and on an EMR cluster."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import SparkSession

from teem_assets.data_root import DataRoot
from teem_assets.stages import aggregate, convert, migrate
from teem_assets.stages.report import StageReport
from teem_assets.stages.request import StageRequest

Stage = Callable[[SparkSession, DataRoot, StageRequest], StageReport]
STAGES: dict[str, Stage] = {"convert": convert.run, "migrate": migrate.run, "aggregate": aggregate.run}


def run_stage(spark: SparkSession, request: StageRequest, root: DataRoot | None = None) -> StageReport:
    """Run one stage; `root` is the caller's open data root, else one built from the request."""
    if request.stage not in STAGES:
        raise ValueError(f"unknown stage {request.stage!r}: one of {', '.join(STAGES)}")
    return STAGES[request.stage](spark, root or DataRoot(**request.root), request)
