"""Files behind a path or URI: a local path or any URI pyarrow's filesystems know (`s3://…`)."""

from __future__ import annotations

import os

import pyarrow.fs as pafs


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of `location` and the path inside it."""
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), os.path.abspath(location)


def join(location: str, *names: str) -> str:
    return "/".join([location.rstrip("/"), *names])


def basename(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]
