"""Files behind a path or URI: a local path or any URI pyarrow's filesystems know (`s3://…`)."""

from __future__ import annotations

import os

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from teem_assets.settings import load

# Threads for the driver's work on many unloads at once (listing parts, emptying folders, committing pointers):
# a few requests each that wait on S3. One unload after another, a 14-day range on moto's S3, throttled, spent
# 80 s of its conversion there.
REQUEST_THREADS = 16


def s3_filesystem() -> pafs.S3FileSystem:
    """S3 through AWS's default chain; `AWS_ENDPOINT_URL_S3` (else `AWS_ENDPOINT_URL`), as AWS's SDKs read them,
    sends it to moto or MinIO."""
    settings = load()
    endpoint, region = settings.s3_endpoint_url or settings.aws_endpoint_url, settings.aws_region
    options: dict[str, object] = {"region": region} if region else {}
    if endpoint:
        options |= {"endpoint_override": endpoint, "scheme": endpoint.split("://", 1)[0]}
    return pafs.S3FileSystem(**options)


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of `location` and the path inside it."""
    if location.startswith("s3://"):
        return s3_filesystem(), location[len("s3://") :]
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), os.path.abspath(location)


def join(location: str, *names: str) -> str:
    return "/".join([location.rstrip("/"), *names])


def basename(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def parquet_dataset(uris: list[str]) -> ds.Dataset:
    """Parquet files given by path or URI (all on one filesystem) as one Arrow dataset."""
    filesystem, _ = resolve(uris[0])
    return ds.dataset([resolve(uri)[1] for uri in uris], format="parquet", filesystem=filesystem)


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
