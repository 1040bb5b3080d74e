"""Which unloads have arrived complete under `csv/`: listed from S3 (any endpoint, paged) or a local root.

An unload folder is complete when its manifest is there, or when no part has changed for a settle period
(Redshift writes parts first and the manifest last; without a manifest, silence is the only signal).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from teem_assets import layout


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the root, e.g. csv/fact_attendance/incremental/2019-09-01/fact_attendance_0000_part_00
    size: int
    modified: dt.datetime
    etag: str


def _split_s3(root: str) -> tuple[str, str]:
    bucket, _, prefix = root[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def list_objects(
    root: str, relative: str, s3_client: object | None = None, first_folder: str | None = None
) -> Iterator[StoredObject]:
    """Every object under root/relative (a folder, ending in "/"), or with `first_folder` only those in its
    subfolders named `first_folder` or later (S3's StartAfter: the keys before are never listed). S3 pages of
    1,000 keys are followed to the end."""
    if root.startswith("s3://"):
        bucket, prefix = _split_s3(root)
        start = f"{prefix}/" if prefix else ""
        where = {"Bucket": bucket, "Prefix": start + relative}
        if first_folder:
            where["StartAfter"] = start + relative + first_folder  # its own keys follow: "<folder>/..."
        for page in s3_client.get_paginator("list_objects_v2").paginate(**where):
            for item in page.get("Contents", []):
                key = item["Key"][len(start) :]
                yield StoredObject(key, item["Size"], item["LastModified"], item["ETag"].strip('"'))
        return
    base = os.path.join(root, relative)
    for folder, subfolders, files in os.walk(base):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        if first_folder and folder == base:
            subfolders[:] = [d for d in subfolders if d >= first_folder]
            files = []
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            key = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
            yield StoredObject(key, stat.st_size, modified, f"{stat.st_size}-{stat.st_mtime_ns}")


def is_complete(objects: list[StoredObject], now: dt.datetime, settle: dt.timedelta) -> bool:
    if any(o.key.endswith("manifest") for o in objects):
        return True
    return bool(objects) and now - max(o.modified for o in objects) >= settle


def fingerprint(objects: list[StoredObject]) -> str:
    """Changes whenever an object is added, removed or re-uploaded."""
    lines = sorted(f"{o.key}\t{o.size}\t{o.etag}" for o in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class DateUnloads:
    """The fact tables' unloads of one batch date, as listed."""

    complete: bool  # every fact table has a folder of that date, and each is complete
    fingerprint: str
    modified: dt.datetime  # the newest object's last modification


def batch_unloads(
    root: str,
    tables: list[str],
    now: dt.datetime,
    settle: dt.timedelta,
    s3_client: object | None = None,
    first_date: str | None = None,
) -> dict[str, DateUnloads]:
    """Batch date (folder name) -> its unloads, for every date folder under csv/<table>/incremental/, or only
    those named `first_date` or later."""
    folders: dict[str, dict[str, list[StoredObject]]] = defaultdict(lambda: defaultdict(list))
    for table in tables:
        incremental = layout.raw_incremental("", table).lstrip("/") + "/"
        for item in list_objects(root, incremental, s3_client, first_date):
            day = item.key[len(incremental) :].split("/", 1)[0]
            folders[day][table].append(item)
    found = {}
    for day, by_table in sorted(folders.items()):
        objects = [o for listed in by_table.values() for o in listed]
        complete = all(is_complete(by_table.get(table, []), now, settle) for table in tables)
        found[day] = DateUnloads(complete, fingerprint(objects), max(o.modified for o in objects))
    return found


def complete_snapshots(
    root: str, tables: list[str], now: dt.datetime, settle: dt.timedelta, s3_client: object | None = None
) -> str | None:
    """The fingerprint of the dimension snapshots when every table's snapshot is there and complete."""
    everything = []
    for table in tables:
        objects = list(list_objects(root, layout.raw_snapshot("", table).lstrip("/") + "/", s3_client))
        if not is_complete(objects, now, settle):
            return None
        everything += objects
    return fingerprint(everything)
