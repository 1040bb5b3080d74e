"""Where a cluster's Dagster Pipes objects go: under the data root's prefix (so an IAM policy scoped to the
root allows them), in the run's folder (`<root>/pipes/<run id>/`), one folder per stage invocation in it,
deleted once read: the context a step reads, and the messages it writes back. What a failed read left is
deleted with the run's folder when the run ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_aws.pipes import PipesS3MessageReader

MESSAGES_FOLDER = "pipes"


def run_folder(prefix: str, run_id: str) -> str:
    """The run's folder of Pipes objects under `prefix` (the root's, in its bucket)."""
    return "/".join(p for p in (prefix.strip("/"), MESSAGES_FOLDER, run_id) if p)


def _folder(run_folder: str) -> str:
    return f"{run_folder}/{uuid.uuid4().hex}"


def delete_folder(client: Any, bucket: str, folder: str) -> None:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{folder.rstrip('/')}/")
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


class RootPrefixedS3MessageReader(PipesS3MessageReader):
    """dagster-aws' S3 reader with its objects in the run's folder instead of a random top-level prefix."""

    def __init__(self, *, folder: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = folder

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        key_prefix = _folder(self.folder)
        with super().get_params() as params:
            try:
                yield {**params, "key_prefix": key_prefix}
            finally:  # the reader's threads have read every chunk by now (they are joined inside this block)
                delete_folder(self.client, self.bucket, key_prefix)
