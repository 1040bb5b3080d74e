"""Where the stages' Spark runs (DESIGN §4): in the run's process (default), sent with spark-submit to a
master URL, or as steps on the run's transient EMR cluster through Dagster Pipes. The same entry points
(`teem_assets.stages`) run in all three; the assets only ask this resource to run one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from resources.emr import EmrResource
from resources.emr_cluster import RunCluster
from resources.emr_serverless import EmrServerlessResource
from resources.run_dates import every_batch_date
from resources.serverless_run import ServerlessRun
from resources.spark_choice import SparkChoice, choose, unload_bytes
from resources.spark_submit import run_spark_submit
from resources.stage_results import StageResult, results_of, then_fail
from resources.storage import StorageResource
from teem_assets.settings import SPARK_AUTO_MAX_BYTES
from teem_assets.spark_session import build_spark_session
from teem_assets.stages import run_stage
from teem_assets.stages.logs import forwarding_stage_logs
from teem_assets.stages.request import StageRequest

IN_PROCESS = "in-process"
EMR = "emr"
EMR_SERVERLESS = "emr-serverless"
AUTO = "auto"


class SparkResource(LazyPySparkResource):
    """`where`: "in-process" (a `local[*]` application in the run's process, shared by its stages, stopped at
    its end), a Spark master URL (`spark://host:7077`, `yarn`, `local[4]`: each stage a spark-submit), or
    "emr" (each stage a step on the run's transient cluster of the `emr` settings, terminated at the run's end),
    "emr-serverless" (each stage a job run on the application of the `emr_serverless` settings), or "auto":
    in-process when the run's unloads are under `auto_max_bytes`, else `auto_cluster`."""

    spark_config: dict[str, Any] = {}  # noqa: RUF012 - pydantic copies field defaults
    where: str = IN_PROCESS
    driver_memory: str = "4g"  # a spark-submitted driver's heap; in-process, spark_session.LOCAL_CONF's
    # Dagster Pipes' messages from a spark-submit driver: a temporary file, or this bucket (as EMR sends them).
    messages_bucket: str | None = None
    emr: EmrResource = Field(default_factory=EmrResource)
    emr_serverless: EmrServerlessResource = Field(default_factory=EmrServerlessResource)
    auto_max_bytes: int = SPARK_AUTO_MAX_BYTES  # TEEM_SPARK_AUTO_MAX_BYTES
    auto_cluster: str = EMR  # TEEM_SPARK_AUTO_CLUSTER: emr, emr-serverless or a master URL

    _owned: bool = PrivateAttr(default=False)
    _cluster: RunCluster | None = PrivateAttr(default=None)
    _serverless: ServerlessRun | None = PrivateAttr(default=None)
    _chosen: SparkChoice | None = PrivateAttr(default=None)

    def _init_session(self) -> None:
        if self._spark_session is None:
            active = SparkSession.getActiveSession()
            self._spark_session = build_spark_session("teem", "local[*]", self.spark_config)
            self._owned = active is None
            if self._owned:
                dg.get_dagster_logger().info(
                    f"started Spark application {self._spark_session.sparkContext.applicationId} (local[*])"
                )

    def session(self) -> SparkSession:
        """The run's in-process session: one already active in this process (a test, a notebook) or a new one."""
        return self.spark_session

    def run_stage(
        self, context: dg.AssetExecutionContext, storage: StorageResource, request: StageRequest
    ) -> Iterator[StageResult]:
        """Run a stage where this resource says; yield its materializations and check results, then fail
        naming what it could not do (an unreadable unload), if anything."""
        where = self._where_for(context, storage)
        if where == IN_PROCESS:
            with forwarding_stage_logs(context.log):
                report = run_stage(self.session(), request, storage.data)
            yield from then_fail(results_of(report), report.failures)
            return
        if where == EMR:
            if self._cluster is None:
                self._cluster = self.emr.run_cluster()
            yield from then_fail(*self.emr.run_stage(context, request, storage.data, self._cluster))
            return
        if where == EMR_SERVERLESS:
            if self._serverless is None:
                self._serverless = self.emr_serverless.run_state()
            yield from then_fail(*self.emr_serverless.run_stage(context, request, storage.data, self._serverless))
            return
        conf = dict(self.spark_config)
        endpoints = {"AWS_ENDPOINT_URL": storage.aws_endpoint_url, "AWS_ENDPOINT_URL_S3": storage.s3_endpoint_url}
        for variable, endpoint in endpoints.items():  # executors' Python reads unload parts from the same S3
            if endpoint:
                conf[f"spark.executorEnv.{variable}"] = endpoint
        s3_endpoint = storage.s3_endpoint_url or storage.aws_endpoint_url
        yield from then_fail(
            *run_spark_submit(context, request, where, self.driver_memory, conf, self.messages_bucket, s3_endpoint)
        )

    def _where_for(self, context: dg.AssetExecutionContext, storage: StorageResource) -> str:
        """`where`, or under auto the run's choice: made at its first stage, the same for all of them, and
        kept on the run (tags `teem/spark`, `teem/spark_why`)."""
        if self.where != AUTO:
            return self.where
        if self._chosen is None:
            dates = every_batch_date(context.run)
            run_bytes = unload_bytes(storage.data, dates)
            self._chosen = choose(run_bytes, dates, self.auto_max_bytes, self.auto_cluster, IN_PROCESS)
            context.log.info(f"TEEM_SPARK=auto: {self._chosen.where}, as {self._chosen.why}")
            context.instance.add_run_tags(context.run.run_id, self._chosen.tags())
        return self._chosen.where

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """At the run's end, however it ended: the run's Spark application stops, its EMR cluster terminates,
        what its clusters or job runs cost goes on the run's tags."""
        try:
            tags: dict[str, str] = {}
            if self._cluster is not None:
                self._cluster.terminate(context.log)
                self._cluster.delete_pipes_objects()
                tags.update(self._cluster.report(context.log))
            if self._serverless is not None:
                self._serverless.delete_pipes_objects()
                tags.update(self._serverless.report(context.log))
            if tags and context.instance is not None and context.run is not None:
                context.instance.add_run_tags(context.run.run_id, tags)
        finally:
            self._cluster, self._serverless, self._chosen = None, None, None
            if self._spark_session is not None and self._owned:
                self._spark_session.stop()
            self._spark_session = None
