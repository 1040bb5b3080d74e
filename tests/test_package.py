"""`teem package`: the archive an EMR cluster installs holds the project's wheel (with the stage driver's
package), the cluster's requirements and the driver script; uploaded, it is what the EMR resource's checks
look for, and what its bootstrap action installs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import py4j
import pyspark
import pytest
from emr_world import REGION, moto_aws

from resources.emr import EmrResource
from resources.spark_submit import spark_submit_path
from teem_assets.cli import main
from teem_assets.data_root import DataRoot
from teem_assets.packaging import BOOTSTRAP_SCRIPT, NOT_ON_THE_CLUSTER, build_archive, cluster_requirements
from teem_assets.serverless_environment import NODE_LIBRARIES, UnfitEnvironmentError, build_environment, check_glibc
from teem_assets.spark_session import project_jars
from teem_assets.stages.entry import DRIVER_SCRIPT
from teem_assets.stages.report import StageReport
from teem_assets.stages.request import StageRequest


def test_the_cluster_requirements_are_the_pins_a_stage_needs_without_dagster_or_spark():
    names = {r.split("[")[0].split("==")[0] for r in cluster_requirements()}
    assert {"pyarrow", "pyiceberg", "numba", "pandas", "tabulate", "boto3", "dagster-pipes"} <= names
    assert not names & NOT_ON_THE_CLUSTER
    assert all("==" in r for r in cluster_requirements())  # the same pins as the Dagster side


def test_the_archive_holds_the_project_wheel_requirements_and_driver(tmp_path):
    archive = build_archive(tmp_path, requirements=[])  # the requirements' wheels: `teem package` downloads them
    with tarfile.open(archive.path) as tar:
        names = tar.getnames()
        assert tar.extractfile("teem_stage.py").read().decode() == DRIVER_SCRIPT
        [wheel] = [n for n in names if n.startswith("wheels/teem_pipelines-")]
        tar.extract(wheel, tmp_path / "x")
    with zipfile.ZipFile(tmp_path / "x" / wheel) as project:
        assert {"teem_assets/stages/entry.py", "teem_assets/catalogue.py", "resources/emr.py"} <= set(
            project.namelist()
        )
    assert "requirements.txt" in names
    assert "wheels/teem_pipelines-" in BOOTSTRAP_SCRIPT and "--no-index" in BOOTSTRAP_SCRIPT


def test_teem_package_uploads_what_the_emr_resource_checks_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("teem_assets.packaging.cluster_requirements", lambda: [])
    with moto_aws() as aws:
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
        uri = "s3://teem-artifacts/releases/teem-cluster.tar.gz"
        emr = EmrResource(subnet_id="subnet-1", archive_uri=uri, region=REGION, aws_endpoint_url=aws.endpoint)
        root = DataRoot("s3://teem/root")
        try:
            emr.validate(root)
            raise AssertionError("a missing archive passed")
        except ValueError as error:
            assert uri in str(error)
        assert main(["package", "--out", str(tmp_path), "--upload", uri]) == 0
        assert f"TEEM_EMR_ARCHIVE_URI={uri}" in capsys.readouterr().out
        emr.validate(root)  # nothing missing now
        s3 = aws.client("s3")
        script = s3.get_object(Bucket="teem-artifacts", Key="releases/teem-cluster.tar.gz.bootstrap.sh")
        assert script["Body"].read().decode() == BOOTSTRAP_SCRIPT
        [built] = tmp_path.glob("teem-cluster-*.tar.gz")
        uploaded = s3.get_object(Bucket="teem-artifacts", Key="releases/teem-cluster.tar.gz")["Body"].read()
        assert uploaded == built.read_bytes()
        assert emr.archive_digest() == hashlib.sha256(uploaded).hexdigest()  # what every node's bootstrap checks


def _bootstrap(tmp_path: Path, archive: Path, digest: str) -> subprocess.CompletedProcess:
    """The bootstrap script on this machine up to its first install: `aws s3 cp` copies a local file (no AWS
    here), and `sudo` stops the script where a node would start installing."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir(exist_ok=True)
    stubs = {"aws": 'cp "$4" "$5"\n', "sudo": 'echo "installing: $*"; exit 42\n'}
    for name, body in stubs.items():
        (bin_folder / name).write_text(f"#!/bin/bash\n{body}")
        (bin_folder / name).chmod(0o755)
    script = tmp_path / "bootstrap.sh"
    script.write_text(BOOTSTRAP_SCRIPT)
    env = {"PATH": f"{bin_folder}:/usr/bin:/bin"}
    return subprocess.run(["bash", str(script), str(archive), "python3.11", digest], env=env, capture_output=True,
                          text=True)  # fmt: skip


def test_the_bootstrap_installs_only_the_archive_whose_sha256_the_run_read(tmp_path):
    archive = tmp_path / "teem-cluster.tar.gz"
    archive.write_bytes(b"the archive the run checked")
    replaced = _bootstrap(tmp_path, archive, hashlib.sha256(b"an archive uploaded since").hexdigest())
    assert replaced.returncode == 1
    assert f"teem bootstrap: {archive} is not the archive the run checked" in replaced.stderr
    assert "installing" not in replaced.stdout
    same = _bootstrap(tmp_path, archive, hashlib.sha256(archive.read_bytes()).hexdigest())
    assert same.returncode == 42 and same.stdout.startswith("installing: dnf install")  # past the check


def _binary_wheel(folder: Path, arch: str) -> str:
    """A minimal wheel of a package built for one CPU, as PyPI serves numba's or pyarrow's."""
    name = f"teem_test_tinyext-1.0-cp311-cp311-manylinux_2_17_{arch}.whl"
    info = "teem_test_tinyext-1.0.dist-info"
    with zipfile.ZipFile(folder / name, "w") as wheel:
        wheel.writestr("teem_test_tinyext/__init__.py", "")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: teem-test-tinyext\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_{arch}\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return name


def test_teem_package_for_graviton_takes_the_aarch64_wheels(tmp_path, monkeypatch, capsys):
    links = tmp_path / "links"  # a package built for both CPUs, in a folder pip looks in besides its index
    links.mkdir()
    wheels = {arch: _binary_wheel(links, arch) for arch in ("x86_64", "aarch64")}
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setattr("teem_assets.packaging.cluster_requirements", lambda: ["teem-test-tinyext==1.0"])
    for arch, other in (("aarch64", "x86_64"), ("x86_64", "aarch64")):
        out = tmp_path / arch
        assert main(["package", "--out", str(out), "--arch", arch]) == 0
        [archive] = out.glob("teem-cluster-*.tar.gz")
        assert archive.name.endswith(f"-{arch}.tar.gz")
        with tarfile.open(archive) as tar:
            names = {Path(n).name for n in tar.getnames()}
        assert wheels[arch] in names and wheels[other] not in names
    capsys.readouterr()


@pytest.mark.slow
def test_the_archive_installs_offline_and_its_driver_runs_a_stage(sample_root, tmp_path):
    """What the bootstrap action does on a node, then a stage from that environment alone: the archive's
    wheels and the Spark EMR provides (pyspark and py4j), nothing of the Dagster side's."""
    archive = build_archive(tmp_path / "dist")  # the cluster requirements' wheels, from PyPI
    node = tmp_path / "node"
    with tarfile.open(archive.path) as tar:
        tar.extractall(node, filter="data")
    subprocess.run([sys.executable, "-m", "venv", str(node / "python")], check=True)
    python = str(node / "python" / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(node / "wheels")]
    subprocess.run([*pip, "-r", str(node / "requirements.txt")], check=True)
    subprocess.run([*pip, "--no-deps", *map(str, (node / "wheels").glob("teem_pipelines-*.whl"))], check=True)
    provided = tmp_path / "emr-provides"
    provided.mkdir()
    for package in (pyspark, py4j):
        (provided / package.__name__).symlink_to(Path(package.__file__).parent)
    site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    Path(site, "emr-provides.pth").write_text(f"{provided}\n")
    assert subprocess.run([python, "-c", "import dagster"], capture_output=True).returncode != 0  # not shipped

    root = DataRoot(str(tmp_path / "root"))
    shutil.copytree(sample_root / "csv", Path(root.root) / "csv")
    request = StageRequest("convert", root.settings(), ["dim_space", "dim_company"], ["snapshot"],
                           ["parquet/dim_space:snapshot_not_shrunk"])  # fmt: skip
    (tmp_path / "request.json").write_text(request.to_json())
    command = [spark_submit_path(), "--master", "local[2]", "--jars", ",".join(project_jars()),
               "--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={python}",
               str(node / "teem_stage.py"), "--request", "request.json", "--report", "report.json"]  # fmt: skip
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-4000:]
    report = StageReport.from_dict(json.loads((tmp_path / "report.json").read_text()))
    rows = {m.asset_key: m.metadata["dagster/row_count"]["raw_value"] for m in report.materializations}
    assert rows == {f"parquet/{t}": root.converted(t, "snapshot").rows for t in ("dim_space", "dim_company")}
    assert all(count > 0 for count in rows.values())
    assert [(c.asset_key, c.check_name, c.passed) for c in report.checks] == [
        ("parquet/dim_space", "snapshot_not_shrunk", True)
    ]
    assert "|" in report.materializations[0].metadata["preview"]["raw_value"]  # markdown by tabulate


PROBE = """
import json, sys, ssl, sqlite3, lzma, bz2, ctypes, zlib, decimal, uuid, hashlib, teem_assets
mapped = {w for w in open("/proc/self/maps").read().split() if ".so" in w}
found = {"prefix": sys.prefix, "project": teem_assets.__file__, "stdlib": ssl.__file__, "mapped": sorted(mapped)}
print(json.dumps(found))
"""


def test_the_serverless_environment_runs_from_wherever_it_is_unpacked_with_only_glibc_from_the_system(tmp_path):
    glibc = tuple(int(n) for n in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split("."))  # this machine's
    built = build_environment(tmp_path / "out", requirements=[], node_glibc=glibc)
    unpacked = tmp_path / "elsewhere" / "environment"  # as spark.archives unpacks it in a worker's folder
    unpacked.mkdir(parents=True)
    with tarfile.open(built.path) as tar:
        assert {"bin/python", f"bin/python{sys.version_info.major}.{sys.version_info.minor}"} <= set(tar.getnames())
        tar.extractall(unpacked, filter="tar")
    shutil.rmtree(tmp_path / "out")
    probe = subprocess.run(
        [str(unpacked / "bin/python"), "-c", PROBE], env={}, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found = json.loads(probe.stdout)
    assert found["prefix"] == str(unpacked)
    assert found["project"].startswith(str(unpacked)) and found["stdlib"].startswith(str(unpacked))
    outside = [m for m in found["mapped"] if not m.startswith(str(unpacked))]
    assert outside and {Path(m).name for m in outside} <= NODE_LIBRARIES  # glibc's own, nothing else
    assert "libssl.so.3" in built.libraries and built.glibc <= glibc
    with pytest.raises(UnfitEnvironmentError, match=r"needs glibc 2\.\d+, the nodes have 2\.17"):
        check_glibc(unpacked, (2, 17))  # the oldest manylinux: this machine's Python needs newer
