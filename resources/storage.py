"""The data root: a local folder, or an S3 prefix mirrored to a local work folder for local Spark.

With an S3 root and local Spark (hadoop-aws cannot be installed here, DESIGN §4), the run copies what it
reads from S3 into the mirror with boto3 first, and uploads what it publishes; with a local root the
mirror is the root itself.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from urllib.parse import urlparse

import boto3
import dagster as dg
from pydantic import PrivateAttr

from teem_assets.publish import publish_dir

Publisher = Callable[[str, str], None]


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/")


class StorageResource(dg.ConfigurableResource):
    """`root` is a folder or `s3://bucket/prefix`; `work_dir` holds the local mirror of an S3 root."""

    root: str
    work_dir: str

    _client: object = PrivateAttr(default=None)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def local_root(self) -> str:
        """Where local Spark reads and writes: the root itself, or its mirror."""
        if not self.is_s3:
            return os.path.abspath(self.root)
        bucket, prefix = _split_s3(self.root)
        return os.path.join(os.path.abspath(self.work_dir), "s3", bucket, prefix)

    def _s3(self):  # noqa: ANN202 - boto3 clients have no static type
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    def _remote(self, local_path: str) -> tuple[str, str]:
        bucket, prefix = _split_s3(self.root)
        relative = os.path.relpath(local_path, self.local_root).replace(os.sep, "/")
        return bucket, f"{prefix}/{relative}".lstrip("/")

    def list_remote(self, local_path: str) -> dict[str, tuple[int, float]]:
        """Objects under the folder's S3 prefix: relative name -> (size, last-modified epoch seconds)."""
        bucket, prefix = self._remote(local_path)
        found: dict[str, tuple[int, float]] = {}
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix) + 1 :]] = (item["Size"], item["LastModified"].timestamp())
        return found

    def pull(self, local_path: str) -> str:
        """Make the local folder a copy of its S3 prefix (last-modified times kept, for the stale-part rule)."""
        if not self.is_s3:
            return local_path
        bucket, prefix = self._remote(local_path)
        remote = self.list_remote(local_path)
        for name, (size, modified) in remote.items():
            target = os.path.join(local_path, name)
            if os.path.exists(target) and os.path.getsize(target) == size and os.path.getmtime(target) == modified:
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self._s3().download_file(bucket, f"{prefix}/{name}", target)
            os.utime(target, (modified, modified))
        for folder, _, files in os.walk(local_path):
            for name in files:
                relative = os.path.relpath(os.path.join(folder, name), local_path).replace(os.sep, "/")
                if relative not in remote:
                    os.remove(os.path.join(folder, name))
        return local_path

    def push(self, local_path: str) -> None:
        """Upload the folder to its S3 prefix and remove objects there that the folder no longer has."""
        if not self.is_s3:
            return
        bucket, prefix = self._remote(local_path)
        uploaded = set()
        for folder, directories, files in os.walk(local_path):
            directories[:] = [d for d in directories if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                relative = os.path.relpath(os.path.join(folder, name), local_path).replace(os.sep, "/")
                self._s3().upload_file(os.path.join(folder, name), bucket, f"{prefix}/{relative}")
                uploaded.add(relative)
        for name in set(self.list_remote(local_path)) - uploaded:
            self._s3().delete_object(Bucket=bucket, Key=f"{prefix}/{name}")

    def publish(self, staging: str, final: str) -> None:
        """Swap `staging` into place locally, then upload it when the root is on S3."""
        publish_dir(staging, final)
        self.push(final)

    def remove(self, final: str) -> None:
        """Remove a published folder, locally and from S3."""
        shutil.rmtree(final, ignore_errors=True)
        self.push(final)
