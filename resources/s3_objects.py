"""Whether an s3:// object exists, for the settings checked before a cluster or job run starts."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from teem_assets.unload.location import split_s3


def s3_object_exists(s3: Any, uri: str) -> bool:
    """`s3` is a boto3 client; an error other than "not found" (access denied) is raised as it is."""
    bucket, key = split_s3(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
