"""Where a cluster's Dagster Pipes objects go: under the data root's prefix (so an IAM policy scoped to the
root allows them), one folder per stage invocation, deleted once read: the context a step reads, and the
messages it writes back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster_aws.pipes import PipesS3ContextInjector, PipesS3MessageReader

MESSAGES_FOLDER = "pipes"
CONTEXT_FILE = "context.json"


def _folder(prefix: str) -> str:
    return "/".join(p for p in (prefix.strip("/"), MESSAGES_FOLDER, uuid.uuid4().hex) if p)


class RootPrefixedS3MessageReader(PipesS3MessageReader):
    """dagster-aws' S3 reader with its objects under `prefix` instead of a random top-level prefix."""

    def __init__(self, *, prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        key_prefix = _folder(self.prefix)
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


class RootPrefixedS3ContextInjector(PipesS3ContextInjector):
    """dagster-aws' S3 context injector with the context under `prefix`: a step's arguments carry only where it
    is (EMR takes 10,240 characters in all of a step's arguments; a run's context with its extras can be longer)."""

    def __init__(self, *, prefix: str, bucket: str, client: Any) -> None:
        super().__init__(bucket=bucket, client=client)
        self.prefix = prefix

    @contextmanager
    def inject_context(self, context: Any) -> Iterator[dict[str, Any]]:
        key = f"{_folder(self.prefix)}/{CONTEXT_FILE}"
        self.client.put_object(Body=json.dumps(context).encode("utf-8"), Bucket=self.bucket, Key=key)
        try:
            yield {"bucket": self.bucket, "key": key}
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=key)
