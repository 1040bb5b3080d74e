"""The local Spark driver's class-data-sharing archive (the JDK's CDS): the classes a pipeline run loads, parsed
and verified once, then mapped by every later local driver JVM instead of being read from the jars one by one.
Measured on a fresh `teem run` of two days of a small sample (2 cores): 29-31 s and 34-38 CPU-seconds without
an archive, 25.5 s and 30 with one built from a smaller workload. `dev.sh test` builds it (`teem class-archive`);
a JVM or class path other than the archive's makes the driver ignore it (`-Xshare:auto`), so a stale archive
costs its benefit and nothing else."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from teem_assets.spark_session import CLASS_ARCHIVE, DRIVER_JAVA_OPTIONS, build_spark_session


def _remove_partials_of_dead_builders(archive: Path) -> None:
    """A builder killed while dumping leaves its partial archive (some 200 MB); one still alive keeps its own."""
    for partial in archive.parent.glob(f".{archive.name}.*"):
        pid = partial.name.rsplit(".", 1)[-1]
        if pid.isdigit() and not Path("/proc", pid).exists():
            partial.unlink(missing_ok=True)


def build_archive(workload: Callable[[], None], work: Path, archive: Path = CLASS_ARCHIVE) -> Path:
    """Run `workload` on a local driver that lists every class it loads, end that JVM, then dump the listed
    classes with the driver's own class path into `archive` (replaced in one rename)."""
    _remove_partials_of_dead_builders(archive)
    archive.unlink(missing_ok=True)  # a driver that maps it keeps its mapping; this one must load every class
    classes = work / "classes.lst"
    spark = build_spark_session(
        "teem-class-archive", "local[*]", {DRIVER_JAVA_OPTIONS: f"-XX:DumpLoadedClassList={classes}"}
    )
    context = spark.sparkContext
    system = context._jvm.java.lang.System
    class_path, java_home = system.getProperty("java.class.path"), system.getProperty("java.home")
    try:
        workload()  # its runs join this session, the JVM that lists the classes
    finally:
        spark.stop()
        jvm = context._gateway.proc  # the JVM exits, its list written out, once its standard input closes
        jvm.stdin.close()
        jvm.wait(120)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")  # beside it: the rename is one step
    dump = [os.path.join(java_home, "bin", "java"), "-Xshare:dump", f"-XX:SharedClassListFile={classes}"]
    try:
        subprocess.run(
            [*dump, f"-XX:SharedArchiveFile={partial}", "-cp", class_path], check=True, capture_output=True, timeout=600
        )
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive
