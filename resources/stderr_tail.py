"""The last lines of a failed driver's stderr, which EMR (on EC2 and Serverless) copies gzipped under the log
URI shortly after the driver ends: waited for a while, else where it will be."""

from __future__ import annotations

import gzip
import time
from typing import Any

from botocore.exceptions import ClientError

from teem_assets.unload.location import split_s3

STDERR_LINES = 30  # of a failed driver's stderr, in its Dagster error


def stderr_tail(s3: Any, uri: str, wait_seconds: float, poll_seconds: float) -> str:
    """The tail of the stderr.gz at `uri` as the end of an error message; `s3` is a boto3 client. A stderr that
    cannot be read says why, and never replaces the failure it ends."""
    bucket, key = split_s3(uri)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            break
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in ("NoSuchKey", "404"):
                return f"; its stderr at {uri} could not be read ({code})"
        if time.monotonic() >= deadline:
            return f"; its stderr will be at {uri}"
        time.sleep(min(5.0, poll_seconds))
    lines = gzip.decompress(body).decode("utf-8", "replace").rstrip().splitlines()[-STDERR_LINES:]
    return f"\nthe last {len(lines)} lines of its stderr ({uri}):\n" + "\n".join(lines)
