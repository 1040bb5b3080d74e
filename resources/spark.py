"""Local Spark sessions with every clock pinned to UTC (DESIGN §4), whoever calls and wherever they run."""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr
from pyspark.sql import SparkSession

UTC_JAVA_OPTION = "-Duser.timezone=UTC"

# Settings the project relies on; a caller's extra settings cannot override them.
PINNED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": UTC_JAVA_OPTION,
    "spark.executor.extraJavaOptions": UTC_JAVA_OPTION,
    "spark.executorEnv.TZ": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.compression.codec": "snappy",
}

# Iceberg's SQL (MERGE INTO, the metadata tables) in every session.
ICEBERG_CONF: dict[str, str] = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
}
# Installed by dev.sh from jvm/pom.xml (Maven, checksums in jvm/jars.sha256); never fetched at run time.
PROJECT_JARS = Path(__file__).resolve().parent.parent / "jvm" / "jars"

DEFAULT_CONF: dict[str, str] = {
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.ansi.enabled": "true",
}


def pin_process_to_utc() -> None:
    """The driver process and everything it starts (JVM, Python workers) run in UTC."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


class MissingJars(Exception):
    """The JVM jars the project needs are not installed."""


def project_jars(folder: str | Path = PROJECT_JARS) -> list[str]:
    jars = sorted(glob.glob(os.path.join(folder, "*.jar")))
    if not any("iceberg-spark-runtime" in os.path.basename(j) for j in jars):
        raise MissingJars(f"no Iceberg Spark runtime in {folder}: run ./dev.sh (it fetches jvm/pom.xml's jars)")
    return jars


def spark_conf(master: str, extra: Mapping[str, str] | None = None, jars: list[str] | None = None) -> dict[str, str]:
    """The session's settings: defaults, then the caller's, then the pinned ones on top."""
    conf = {**DEFAULT_CONF, **ICEBERG_CONF, **(extra or {})}
    conf["spark.jars"] = ",".join(project_jars() if jars is None else jars)
    for key, value in PINNED_CONF.items():
        if key.endswith("extraJavaOptions") and key in conf:
            conf[key] = f"{conf[key]} {value}"  # the last -Duser.timezone wins in the JVM
        else:
            conf[key] = value
    conf["spark.master"] = master
    conf["spark.pyspark.python"] = sys.executable
    conf["spark.pyspark.driver.python"] = sys.executable
    return conf


def build_spark_session(
    app_name: str = "teem",
    master: str = "local[*]",
    extra_conf: Mapping[str, str] | None = None,
    jars: list[str] | None = None,
) -> SparkSession:
    """Start (or join) the process's Spark application, pinned to UTC, with Iceberg."""
    pin_process_to_utc()
    builder = SparkSession.builder.appName(app_name)
    for key, value in spark_conf(master, extra_conf, jars).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


class SparkResource(dg.ConfigurableResource):
    """Local Spark for a run: started on first use, one application for the whole run, stopped at its end.

    Every stage of a run shares it (the jobs use the in-process executor), so a run starts at most one JVM.
    """

    master: str = "local[*]"
    driver_memory: str = "4g"
    extra_conf: dict[str, str] = {}  # noqa: RUF012 - pydantic copies field defaults

    _session: SparkSession | None = PrivateAttr(default=None)
    _owned: bool = PrivateAttr(default=False)

    def session(self) -> SparkSession:
        """The run's session: one already active in this process (a test, a notebook) or a new one."""
        if self._session is None:
            active = SparkSession.getActiveSession()
            conf = {"spark.driver.memory": self.driver_memory, **self.extra_conf}
            self._session = build_spark_session("teem", self.master, conf)
            self._owned = active is None
            if self._owned:
                dg.get_dagster_logger().info(
                    f"started Spark application {self._session.sparkContext.applicationId} ({self.master})"
                )
        return self._session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None and self._owned:
            self._session.stop()
        self._session = None
