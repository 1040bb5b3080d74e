"""`teem package`: the project's code and the Python packages its stages import on a cluster, as one archive
of wheels for the cluster's Python and platform, with the bootstrap action that installs it on every node
of an EMR cluster (DESIGN §4). Nothing is fetched on the cluster: it only unpacks and installs."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from teem_assets.stages.entry import DRIVER_SCRIPT
from teem_assets.unload.location import resolve

PROJECT = "teem-pipelines"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# What EMR provides (Spark), or what only the Dagster side uses (Dagster itself, PostgreSQL, the embedded server).
NOT_ON_THE_CLUSTER = {
    "dagster",
    "dagster-webserver",
    "dagster-aws",
    "dagster-pyspark",
    "dagster-slack",
    "pyspark",
    "psycopg2-binary",
    "pgserver",
    "pgpq",
}
# Runs on every node as the hadoop user: the Python the stages need, then the archive's wheels, offline.
BOOTSTRAP_SCRIPT = """#!/bin/bash
# Installs teem-pipelines' cluster archive (built by `teem package`) on an EMR node: $1 its s3:// URI,
# $2 the Python to install it for (python3.11), $3 the sha256 the run read beside it (<archive>.sha256).
set -euo pipefail
archive=$1
python=${2:-python3.11}
digest=$3
download=$(mktemp -d)
aws s3 cp --only-show-errors "$archive" "$download/archive.tar.gz"
if ! echo "$digest  $download/archive.tar.gz" | sha256sum --check --status; then
  echo "teem bootstrap: $archive is not the archive the run checked (sha256 $digest): it was replaced or" \\
    "damaged since; run again once \\`teem package --upload\\` has finished" >&2
  exit 1
fi
sudo dnf install -y -q "$python" "$python-pip"
mkdir -p /home/hadoop/teem
cd /home/hadoop/teem
tar xzf "$download/archive.tar.gz"
sudo "$python" -m pip install --quiet --no-index --find-links wheels -r requirements.txt
sudo "$python" -m pip install --quiet --no-index --no-deps wheels/teem_pipelines-*.whl
"""


@dataclass(frozen=True)
class Archive:
    path: Path
    wheels: list[str]
    seconds: float

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def cluster_requirements() -> list[str]:
    """The project's pinned dependencies a stage imports on the cluster, and dagster-pipes."""
    wanted = []
    for line in metadata.requires(PROJECT) or []:
        requirement = Requirement(line)
        if requirement.marker is not None or requirement.name in NOT_ON_THE_CLUSTER:
            continue  # extras (dev) carry a marker
        wanted.append(str(requirement))
    return [*wanted, f"dagster-pipes=={metadata.version('dagster-pipes')}"]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def platforms(arch: str) -> list[str]:
    """The wheel tags an EMR 7 node (Amazon Linux 2023, glibc 2.34) installs, newest first."""
    return [f"manylinux_2_{minor}_{arch}" for minor in (34, 28, 17)] + [f"manylinux2014_{arch}"]


def wheel_options(arch: str, python_version: str) -> list[str]:
    """pip's options for wheels of the nodes' platform and Python (binary wheels only)."""
    tags = [option for tag in platforms(arch) for option in ("--platform", tag)]
    return ["--only-binary=:all:", *tags, "--python-version", python_version, "--implementation", "cp"]


def download_wheels(wheels: Path, requirements: list[str], arch: str, python_version: str) -> None:
    """The project's wheel and every requirement's, for the nodes, into `wheels`."""
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(PROJECT_ROOT))
    if requirements:
        options = wheel_options(arch, python_version)
        pip("download", "--quiet", *options, "--dest", str(wheels), *requirements)


def build_archive(
    out: Path,
    requirements: list[str] | None = None,
    arch: str = "x86_64",
    python_version: str = "3.11",
) -> Archive:
    """Build the archive in `out`: the project's wheel, every requirement's wheels for the nodes' `arch`
    and `python_version` (binary wheels only), requirements.txt and the stage driver."""
    started = time.monotonic()
    requirements = cluster_requirements() if requirements is None else requirements
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="teem-package-") as folder:
        wheels = Path(folder) / "wheels"
        download_wheels(wheels, requirements, arch, python_version)
        path = out / f"teem-cluster-{metadata.version(PROJECT)}-py{python_version}-{arch}.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            archive.add(wheels, arcname="wheels")
            for name, text in (("requirements.txt", "\n".join(requirements) + "\n"), ("teem_stage.py", DRIVER_SCRIPT)):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        names = sorted(p.name for p in wheels.iterdir())
    return Archive(path, names, time.monotonic() - started)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(archive: Path, uri: str, beside: dict[str, bytes] | None = None) -> list[str]:
    """Put the archive at `uri`, its sha256 at `uri`.sha256 and each of `beside` (by default the bootstrap
    script, at `uri`.bootstrap.sh) at `uri` and its suffix: what EmrResource reads; the bootstrap installs the
    archive only if its sha256 is the one the run read."""
    data = archive.read_bytes()
    beside = {".bootstrap.sh": BOOTSTRAP_SCRIPT.encode()} if beside is None else beside
    written = []
    objects = [(uri, data), (f"{uri}.sha256", f"{digest_of(data)}\n".encode())]
    objects += [(f"{uri}{suffix}", content) for suffix, content in beside.items()]
    for target, content in objects:
        filesystem, location = resolve(target)
        # compression=None: pyarrow would gzip a ".gz" name again ("detect"), which no node could unpack
        with filesystem.open_output_stream(location, compression=None) as sink:
            sink.write(content)
        written.append(target)
    return written
