"""The driver program of a stage where Spark is not the Dagster process's: `spark-submit` to a cluster's
master, or an EMR step. Started by Dagster Pipes, it reads its request from the Pipes extras and reports each
materialization and check back (through S3 on EMR); started by hand, it reads `--request` and writes
`--report` as JSON. The only module of the logic that imports `dagster_pipes`, and nothing of `dagster`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from dagster_pipes import (
    PipesContext,
    PipesContextLoader,
    PipesDefaultContextLoader,
    PipesDefaultMessageWriter,
    PipesEnvVarParamsLoader,
    PipesMessageWriter,
    PipesParamsLoader,
    PipesS3ContextLoader,
    PipesS3MessageWriter,
)

from teem_assets.spark_session import build_spark_session
from teem_assets.stages import run_stage
from teem_assets.stages.logs import forwarding_stage_logs
from teem_assets.stages.report import FAILURES, StageReport
from teem_assets.stages.request import StageRequest

REQUEST_EXTRA = "request"
# What spark-submit and an EMR step run: a file of its own, so that no folder of the package lands on sys.path.
DRIVER_SCRIPT = "from teem_assets.stages.entry import main\n\nraise SystemExit(main())\n"


def _message_writer(params: PipesParamsLoader) -> PipesMessageWriter:
    """S3 when the orchestrator reads messages from a bucket (EMR), else its file or stdio."""
    if "bucket" in params.load_messages_params():
        import boto3

        return PipesS3MessageWriter(client=boto3.client("s3"), interval=5)
    return PipesDefaultMessageWriter()


def _context_loader(params: PipesParamsLoader) -> PipesContextLoader:
    """S3 when the orchestrator put the context in a bucket (an EMR step), else its file or the variable."""
    if "bucket" in params.load_context_params():
        import boto3

        return PipesS3ContextLoader(client=boto3.client("s3"))
    return PipesDefaultContextLoader()


def _run(request: StageRequest) -> StageReport:
    spark = build_spark_session(f"teem-{request.stage}", master=None, jars=[])
    try:
        return run_stage(spark, request)
    finally:
        spark.stop()


def report_through_pipes(pipes: PipesContext, report: StageReport) -> None:
    for item in report.materializations:
        pipes.report_asset_materialization(asset_key=item.asset_key, metadata=item.metadata)
    for check in report.checks:
        pipes.report_asset_check(
            check_name=check.check_name,
            passed=check.passed,
            severity=check.severity,  # type: ignore[arg-type]
            metadata=check.metadata,
            asset_key=check.asset_key,
        )
    if report.failures:
        pipes.report_custom_message({FAILURES: report.failures})


def serve_pipes(params: PipesParamsLoader, run: Callable[[StageRequest], StageReport] = _run) -> None:
    """Run the stage Dagster Pipes asks for (its request an extra) and report it back. A context of its own,
    not `open_dagster_pipes`' process-wide one: a process serving a second step reports under that step's."""
    pipes = PipesContext(params, _context_loader(params), _message_writer(params))
    with pipes, forwarding_stage_logs(pipes.log):
        report_through_pipes(pipes, run(StageRequest.from_json(pipes.get_extra(REQUEST_EXTRA))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--request", help="a StageRequest as a JSON file (without Dagster Pipes)")
    parser.add_argument("--report", help="where to write the StageReport (without Dagster Pipes)")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if PipesEnvVarParamsLoader().is_dagster_pipes_process():
        serve_pipes(PipesEnvVarParamsLoader())
        return 0
    if not args.request:
        parser.error("--request is needed outside Dagster Pipes")
    with open(args.request) as source:
        report = _run(StageRequest.from_json(source.read()))
    if args.report:  # closed here: under spark-submit the process may end before Python's own clean-up
        with open(args.report, "w") as output:
            json.dump(report.to_dict(), output, indent=1)
    else:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
