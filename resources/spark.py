"""Local Spark sessions with every clock pinned to UTC (DESIGN §4), whoever calls and wherever they run."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

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
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


def spark_conf(master: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The session's settings: defaults, then the caller's, then the pinned ones on top."""
    conf = {**DEFAULT_CONF, **(extra or {})}
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
    app_name: str = "teem", master: str = "local[*]", extra_conf: Mapping[str, str] | None = None
) -> SparkSession:
    """Start (or join) the process's Spark application, pinned to UTC."""
    pin_process_to_utc()
    builder = SparkSession.builder.appName(app_name)
    for key, value in spark_conf(master, extra_conf).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session
