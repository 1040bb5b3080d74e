"""A local session loads the project's jars where dev.sh installed them, from the driver's class path: none is
handed to Spark to ship, so its in-process executor copies none (through `spark.jars` every local application
copied all of them, 388 MB, into a temporary folder, and a killed one left the copy there)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from resources.spark_submit import spark_submit_path
from teem_assets.spark_session import (
    CLASS_ARCHIVE,
    DRIVER_JAVA_OPTIONS,
    PROJECT_JARS,
    UTC_JAVA_OPTION,
    spark_conf,
)


def test_a_local_session_loads_the_jars_in_place_and_ships_none(spark) -> None:
    context = spark.sparkContext
    assert context.master.startswith("local")
    assert context._jsc.sc().listJars().size() == 0  # nothing for the executor to fetch and copy
    jvm = context._jvm
    catalog = jvm.java.lang.Class.forName("org.apache.iceberg.spark.SparkCatalog")
    loaded_from = Path(catalog.getProtectionDomain().getCodeSource().getLocation().getPath())
    assert loaded_from.parent == PROJECT_JARS.resolve() and loaded_from.name.startswith("iceberg-spark-runtime")


def test_a_local_driver_maps_the_class_archive(spark) -> None:
    """The suite's driver, started as every local driver is, maps the archive `dev.sh test` built: its JVM and
    class path are the archive's (a mismatch is silent, the JVM then loads every class itself)."""
    assert CLASS_ARCHIVE.is_file(), f"no {CLASS_ARCHIVE}: ./dev.sh test builds it (teem class-archive)"
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    assert str(CLASS_ARCHIVE) in Path(f"/proc/{pid}/maps").read_text()


def test_a_local_driver_runs_the_parallel_collector_unless_the_caller_chose_one(spark) -> None:
    """The suite's driver, started as every local driver is, collects with the parallel collector; a caller's
    collector is kept alone (a JVM given two refuses to start), and a cluster's driver gets none of ours."""
    jvm = spark.sparkContext._jvm
    collectors = {bean.getName() for bean in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}
    chosen = spark_conf("local[2]", {DRIVER_JAVA_OPTIONS: "-XX:+UseG1GC -Xss4m"}, jars=[])[DRIVER_JAVA_OPTIONS]
    assert "-XX:+UseG1GC" in chosen and "ParallelGC" not in chosen
    cluster = spark_conf("spark://127.0.0.1:7077", jars=[]).get(DRIVER_JAVA_OPTIONS, "")
    assert "ParallelGC" not in cluster


PROBE = """
from teem_assets.spark_session import build_spark_session
session = build_spark_session("probe", master=None, jars=[])
print("OPTIONS", session.sparkContext.getConf().get("spark.executor.extraJavaOptions"))
session.stop()
"""


def test_under_spark_submit_the_cluster_s_executor_options_are_kept_and_utc_appended(tmp_path: Path) -> None:
    """As on EMR, whose spark-defaults.conf sets the executors' JVM options: the session adds to them."""
    driver = tmp_path / "probe.py"
    driver.write_text(PROBE)
    cluster_options = "-XX:+UseG1GC -XX:OnOutOfMemoryError='kill -9 %p'"
    command = [
        spark_submit_path(),
        "--master",
        "local[1]",
        "--conf",
        f"spark.executor.extraJavaOptions={cluster_options}",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYSPARK_PYTHON": sys.executable}
    finished = subprocess.run([*command, str(driver)], env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    [line] = [line for line in finished.stdout.splitlines() if line.startswith("OPTIONS ")]
    assert line.endswith(f" {cluster_options} {UTC_JAVA_OPTION}")  # after the options Spark itself prepends
