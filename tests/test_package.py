"""`teem package`: the archive an EMR cluster installs holds the project's wheel (with the stage driver's
package), the cluster's requirements and the driver script; uploaded, it is what the EMR resource's checks
look for, and what its bootstrap action installs."""

from __future__ import annotations

import tarfile
import zipfile

from emr_world import REGION, moto_aws

from resources.emr import EmrResource
from teem_assets.cli import main
from teem_assets.data_root import DataRoot
from teem_assets.packaging import BOOTSTRAP_SCRIPT, NOT_ON_THE_CLUSTER, build_archive, cluster_requirements
from teem_assets.stages.entry import DRIVER_SCRIPT


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
        script = aws.client("s3").get_object(Bucket="teem-artifacts", Key="releases/teem-cluster.tar.gz.bootstrap.sh")
        assert script["Body"].read().decode() == BOOTSTRAP_SCRIPT
