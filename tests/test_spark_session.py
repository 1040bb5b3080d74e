"""A local session loads the project's jars where dev.sh installed them, from the driver's class path: none is
handed to Spark to ship, so its in-process executor copies none (through `spark.jars` every local application
copied all of them, 388 MB, into a temporary folder, and a killed one left the copy there)."""

from __future__ import annotations

from pathlib import Path

from teem_assets.spark_session import PROJECT_JARS


def test_a_local_session_loads_the_jars_in_place_and_ships_none(spark) -> None:
    context = spark.sparkContext
    assert context.master.startswith("local")
    assert context._jsc.sc().listJars().size() == 0  # nothing for the executor to fetch and copy
    jvm = context._jvm
    catalog = jvm.java.lang.Class.forName("org.apache.iceberg.spark.SparkCatalog")
    loaded_from = Path(catalog.getProtectionDomain().getCodeSource().getLocation().getPath())
    assert loaded_from.parent == PROJECT_JARS.resolve() and loaded_from.name.startswith("iceberg-spark-runtime")
