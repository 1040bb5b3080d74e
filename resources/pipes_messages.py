"""Where a cluster's Dagster Pipes messages go: under the data root's prefix (so an IAM policy scoped to the
root allows them), one folder per stage invocation, deleted once every message was read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_aws.pipes import PipesS3MessageReader

MESSAGES_FOLDER = "pipes"


class RootPrefixedS3MessageReader(PipesS3MessageReader):
    """dagster-aws' S3 reader with its objects under `prefix` instead of a random top-level prefix."""

    def __init__(self, *, prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix.strip("/")

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        key_prefix = "/".join(p for p in (self.prefix, MESSAGES_FOLDER, uuid.uuid4().hex) if p)
        with super().get_params() as params:
            try:
                yield {**params, "key_prefix": key_prefix}
            finally:  # the reader's threads have read every chunk by now (they are joined inside this block)
                self._delete(key_prefix)

    def _delete(self, key_prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{key_prefix}/")
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
