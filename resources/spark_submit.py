"""A stage sent with `spark-submit` to a Spark master (a standalone cluster, YARN, `local[n]`), its results
back through Dagster Pipes: the request as a Pipes extra, the materializations and checks as messages (a
temporary file, or an S3 bucket as EMR does)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import dagster as dg
import pyspark

from resources.pipes_lines import PipesWholeLineFileMessageReader
from resources.pipes_messages import RootPrefixedS3MessageReader, run_folder
from resources.stage_results import StageResult, failures_in
from teem_assets.settings import stage_environment
from teem_assets.spark_session import project_jars
from teem_assets.stages.entry import DRIVER_SCRIPT, REQUEST_EXTRA
from teem_assets.stages.request import StageRequest


def spark_submit_path() -> str:
    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def submit_command(
    master: str, request: StageRequest, driver: str, driver_memory: str, conf: dict[str, str]
) -> list[str]:
    command = [
        spark_submit_path(),
        "--master",
        master,
        "--name",
        f"teem-{request.stage}",
        "--driver-memory",
        driver_memory,
        "--jars",
        ",".join(project_jars()),
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
    ]
    for key, value in sorted(conf.items()):
        command += ["--conf", f"{key}={value}"]
    return [*command, driver]


def message_reader(messages_bucket: str | None, endpoint_url: str | None, run_id: str) -> dg.PipesMessageReader:
    if messages_bucket:
        client = boto3.client("s3", endpoint_url=endpoint_url) if endpoint_url else boto3.client("s3")
        return RootPrefixedS3MessageReader(
            folder=run_folder("", run_id), bucket=messages_bucket, client=client, interval=1
        )
    return PipesWholeLineFileMessageReader()


def run_spark_submit(
    context: dg.AssetExecutionContext,
    request: StageRequest,
    master: str,
    driver_memory: str,
    conf: dict[str, str],
    messages_bucket: str | None = None,
    endpoint_url: str | None = None,
) -> tuple[list[StageResult], list[str]]:
    """Run the stage's driver under spark-submit and return what it reported; a failed driver fails the step."""
    with tempfile.TemporaryDirectory(prefix="teem-driver-") as folder:
        driver = os.path.join(folder, "teem_stage.py")
        Path(driver).write_text(DRIVER_SCRIPT)
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesEnvContextInjector(),
            message_reader=message_reader(messages_bucket, endpoint_url, context.run.run_id),
            extras={REQUEST_EXTRA: request.to_json()},
        ) as session:
            command = submit_command(master, request, driver, driver_memory, conf)
            context.log.info(f"spark-submit of stage {request.stage} to {master}")
            env = stage_environment(session.get_bootstrap_env_vars())  # no project secret crosses
            finished = subprocess.run(command, env=env, cwd=folder, check=False)
            if finished.returncode != 0:
                raise dg.Failure(
                    f"stage {request.stage} failed under spark-submit to {master} (exit {finished.returncode}); "
                    "its driver's output is in the step's logs"
                )
        results = session.get_results(implicit_materializations=False)  # a table it could not do stays undone
        return list(results), failures_in(session.get_custom_messages())
