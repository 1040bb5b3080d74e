"""The storage resource with an S3 root, through boto3 against moto's S3 server on loopback."""

from __future__ import annotations

import os
from pathlib import Path

from resources.storage import StorageResource
from teem_assets import layout
from teem_assets.unload.parts import find_parts


def test_an_s3_unload_is_staged_to_the_local_mirror(s3, tmp_path):
    prefix = "unloads/csv/fact_attendance/incremental/2019-09-01"
    for name in ("fact_attendance_0000_part_00", "fact_attendance_0001_part_00"):
        s3.put_object(Bucket="teem", Key=f"{prefix}/{name}", Body=f'"{name}"\n'.encode())
    storage = StorageResource(root="s3://teem/unloads", work_dir=str(tmp_path / "work"))
    local = layout.raw_batch(storage.local_root, "fact_attendance", "2019-09-01")
    os.makedirs(local)
    Path(local, "fact_attendance_0009_part_00").write_bytes(b"not in S3\n")

    storage.pull(local)

    assert sorted(os.listdir(local)) == ["fact_attendance_0000_part_00", "fact_attendance_0001_part_00"]
    assert Path(local, "fact_attendance_0001_part_00").read_bytes() == b'"fact_attendance_0001_part_00"\n'
    assert len(find_parts(local).parts) == 2  # last-modified times kept: both belong to the newest unload


def test_publishing_uploads_the_folder_and_removes_what_it_replaced(s3, tmp_path):
    storage = StorageResource(root="s3://teem/unloads", work_dir=str(tmp_path / "work"))
    final = layout.migrated_partition(storage.local_root, "fact_attendance", "2019-09-01")
    s3.put_object(Bucket="teem", Key="unloads/migrated/fact_attendance/created_date=2019-09-01/old.parquet", Body=b"x")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "part-0.parquet").write_bytes(b"new")

    storage.publish(str(staging), final)

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="teem", Prefix="unloads/migrated/")["Contents"]]
    assert keys == ["unloads/migrated/fact_attendance/created_date=2019-09-01/part-0.parquet"]
    assert os.listdir(final) == ["part-0.parquet"]
