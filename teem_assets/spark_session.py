"""Spark sessions with every clock pinned to UTC and Iceberg loaded (DESIGN §4), wherever they run: in the
Dagster process, under spark-submit, on an EMR cluster."""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from py4j.java_gateway import java_import
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
# Classes PySpark names by their short name, hundreds of times per query it builds (`functions` at every
# `F.col`): py4j otherwise tries each of PySpark's imported packages in turn, and each miss searches every jar
# on the class path (measured: 16% of the driver JVM's samples while the aggregates were planned).
SHORT_NAMES = (
    "org.apache.spark.sql.functions",
    "org.apache.spark.sql.SparkSession",
    "org.apache.spark.sql.SparkSession$",
    "org.apache.spark.api.python.PythonUtils",
)
# Installed by dev.sh from jvm/pom.xml (Maven, checksums in jvm/jars.sha256); never fetched at run time.
PROJECT_JARS = Path(__file__).resolve().parent.parent / "jvm" / "jars"
# The local driver's class-data-sharing archive, when built (teem_assets/class_archive.py).
CLASS_ARCHIVE = PROJECT_JARS.parent / "spark-driver.jsa"

DRIVER_CLASS_PATH = "spark.driver.extraClassPath"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
ARCHIVE_JAVA_OPTIONS = (f"-XX:SharedArchiveFile={CLASS_ARCHIVE}", "-Xshare:auto")
# A local driver's collector: the throughput one, a batch run has no use for G1's short pauses. Measured on
# bench/daily.py's days (2026-12-05): peak RSS 3,442-3,543 MB against G1's 3,869-3,952 (1 GB), 3,864 against
# 4,289 (4 GB); the time within the runs' spread (91.0-98.4 s against 91.0-97.5). A collector the caller chose
# stands: a JVM given two refuses to start.
LOCAL_COLLECTOR = "-XX:+UseParallelGC"
CHOSEN_COLLECTOR = re.compile(r"-XX:\+Use(Serial|Parallel|G1|Z|Shenandoah|Epsilon|ConcMarkSweep)GC\b")

DEFAULT_CONF: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.ansi.enabled": "true",
}
# A session inside the Dagster process (`local[*]`): a bigger heap than Spark's 1 GiB, few shuffle partitions,
# and Iceberg writes split in 32 MiB shuffle partitions: by default Iceberg sizes them from its 512 MiB target
# file, so a daily batch (one created_date) was written by one task on one core, and read back by two (measured
# on bench/daily.py's 1 GB day: the append of fact_attendance 10.6 s against 8.5, its MERGE 15.4 against 13.4).
# A 2 GiB heap ran bench/daily.py's 1 GB and 4 GB days as fast as 4 GiB did (98.6 s and 298.6 s against 98.0 and
# 296.5), the JVM's share of the run's peak RSS 2.2-2.7 GB instead of 3.3-4.8.
LOCAL_CONF: dict[str, str] = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.sql.iceberg.advisory-partition-size": str(32 * 2**20),
}


class MissingJars(Exception):
    """The JVM jars the project needs are not installed."""


def project_jars(folder: str | Path = PROJECT_JARS) -> list[str]:
    jars = sorted(glob.glob(os.path.join(folder, "*.jar")))
    if not any("iceberg-spark-runtime" in os.path.basename(j) for j in jars):
        raise MissingJars(f"no Iceberg Spark runtime in {folder}: run ./dev.sh (it fetches jvm/pom.xml's jars)")
    return jars


def _add_driver_options(conf: dict[str, str], *options: str) -> None:
    conf[DRIVER_JAVA_OPTIONS] = " ".join([*filter(None, [conf.get(DRIVER_JAVA_OPTIONS)]), *options])


def spark_conf(
    master: str | None, extra: Mapping[str, str] | None = None, jars: list[str] | None = None
) -> dict[str, str]:
    """The session's settings: defaults, then the caller's, then the pinned ones on top.

    `master` None is a driver started by spark-submit (its master and jars come from there); `jars` None is
    the project's jars, `[]` the ones the cluster provides (EMR's Iceberg)."""
    local = master is not None and master.startswith("local")
    conf = {**DEFAULT_CONF, **(LOCAL_CONF if local else {}), **ICEBERG_CONF, **(extra or {})}
    chosen = project_jars() if jars is None else jars
    if chosen and local:
        # The driver's own class path: through spark.jars, each application copied the jars (388 MB) for its
        # in-process executor, loaded their classes again from the copy, and left the copy behind when killed.
        given = conf.get(DRIVER_CLASS_PATH)
        conf[DRIVER_CLASS_PATH] = os.pathsep.join([*chosen, *([given] if given else [])])
        # Ignored by the JVM unless it and this class path are the archive's. Spark splits the options at spaces.
        if CLASS_ARCHIVE.is_file() and not any(c.isspace() for c in str(CLASS_ARCHIVE)):
            _add_driver_options(conf, *ARCHIVE_JAVA_OPTIONS)
    elif chosen:
        conf["spark.jars"] = ",".join(chosen)
    for key, value in PINNED_CONF.items():
        if key.endswith("extraJavaOptions") and key in conf:
            conf[key] = f"{conf[key]} {value}"  # the last -Duser.timezone wins in the JVM
        else:
            conf[key] = value
    if master is not None:
        conf["spark.master"] = master
    if local:
        if not CHOSEN_COLLECTOR.search(conf.get(DRIVER_JAVA_OPTIONS, "")):
            _add_driver_options(conf, LOCAL_COLLECTOR)
        # One machine: the driver answers on loopback, whatever the host name resolves to.
        conf.setdefault("spark.driver.host", "127.0.0.1")
        conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
    conf["spark.pyspark.python"] = sys.executable
    conf["spark.pyspark.driver.python"] = sys.executable
    return conf


JAVA_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")


def submitted_java_options() -> dict[str, str]:
    """The JVM options spark-submit gave this driver (the cluster's spark-defaults.conf: EMR's own GC and log
    settings, `--conf`), which the session's own would otherwise replace: the UTC option is appended to them."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # spark-submit's JVM, whose system properties hold its settings
    submitted = SparkConf()
    return {key: value for key in JAVA_OPTIONS if (value := submitted.get(key))}


def build_spark_session(
    app_name: str = "teem",
    master: str | None = "local[*]",
    extra_conf: Mapping[str, str] | None = None,
    jars: list[str] | None = None,
) -> SparkSession:
    """Start (or join) the process's Spark application, pinned to UTC, with Iceberg.

    The zone is pinned through Spark's own settings (session zone, JVM options, the Python workers' TZ), never
    by changing this process's zone or variables: the Dagster process around it keeps its own."""
    builder = SparkSession.builder.appName(app_name)
    given = {**(submitted_java_options() if master is None else {}), **(extra_conf or {})}
    for key, value in spark_conf(master, given, jars).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for name in SHORT_NAMES:
        java_import(session.sparkContext._jvm, name)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    if master is not None:  # spark-submit gives its own driver the cluster's interpreter
        # PySpark reads its workers' interpreter from a variable at start; set here, on the context, instead.
        session.sparkContext.pythonExec = sys.executable
    return session
