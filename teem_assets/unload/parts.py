"""Which files make up an unload: the manifest's list when there is one, else the newest unload's parts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from teem_assets.unload.location import basename, resolve

PART_NAME = re.compile(r"^(?P<prefix>.*?)(?P<slice>\d+)_part_(?P<part>\d+)(?:\.(?P<codec>gz|bz2|zst))?$")
MANIFEST_SUFFIX = "manifest"
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst")  # read with the codec their name says
# Parts written more than this long before the newest part belong to an earlier unload of the prefix
# (ALLOWOVERWRITE replaces same-named files but deletes nothing).
DEFAULT_STALE_AFTER_S = 3600.0


class UnloadError(Exception):
    """An unload that cannot be read as a whole: a missing file, a manifest that disagrees, no parts."""


@dataclass(frozen=True)
class Part:
    uri: str
    size: int
    mtime_ns: int
    expected_records: int | None = None

    @property
    def name(self) -> str:
        return basename(self.uri)

    @property
    def compressed(self) -> bool:
        return self.name.endswith(COMPRESSED_SUFFIXES)


@dataclass
class UnloadParts:
    parts: list[Part]
    manifest: str | None = None
    ignored: list[str] = field(default_factory=list)  # files of the folder that are not parts
    stale: list[str] = field(default_factory=list)  # parts of an earlier unload of the folder, not read

    @property
    def total_bytes(self) -> int:
        return sum(p.size for p in self.parts)


def _part_of(info: pafs.FileInfo, location: str, expected: int | None = None) -> Part:
    uri = location if "://" in location else info.path
    return Part(uri=uri, size=info.size, mtime_ns=int(info.mtime_ns or 0), expected_records=expected)


def _child_uri(location: str, info: pafs.FileInfo) -> str:
    return f"{location.rstrip('/')}/{info.base_name}" if "://" in location else info.path


def _from_manifest(fs: pafs.FileSystem, location: str, manifest: pafs.FileInfo) -> UnloadParts:
    folder = location.rstrip("/")
    with fs.open_input_stream(manifest.path) as stream:
        try:
            doc = json.loads(stream.read())
            entries = doc["entries"]
        except (ValueError, KeyError, TypeError) as error:
            raise UnloadError(f"{manifest.path}: not a Redshift manifest ({error})") from None
    parts = []
    for entry in entries:
        name = basename(entry["url"])
        meta = entry.get("meta") or {}
        uri = f"{folder}/{name}" if "://" in folder else f"{manifest.path.rsplit('/', 1)[0]}/{name}"
        _, path = resolve(uri)
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise UnloadError(f"{manifest.path}: lists {name}, which is missing")
        expected_size = meta.get("content_length")
        if expected_size is not None and expected_size != info.size:
            raise UnloadError(
                f"{uri}: the manifest says {expected_size} bytes, the file has {info.size} (truncated or replaced)"
            )
        parts.append(
            Part(uri=uri, size=info.size, mtime_ns=int(info.mtime_ns or 0), expected_records=meta.get("record_count"))
        )
    return UnloadParts(parts=parts, manifest=manifest.path)


def find_parts(location: str, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> UnloadParts:
    """The parts of the unload at `location`: one part file, or a folder of parts (with a manifest or not)."""
    fs, path = resolve(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        if info.base_name.endswith(MANIFEST_SUFFIX):
            return _from_manifest(fs, location.rsplit("/", 1)[0], info)
        return UnloadParts(parts=[_part_of(info, location)])
    if info.type != pafs.FileType.Directory:
        raise UnloadError(f"{location}: no such file or folder")
    children = [c for c in fs.get_file_info(pafs.FileSelector(path)) if c.type == pafs.FileType.File]
    manifests = [c for c in children if c.base_name.endswith(MANIFEST_SUFFIX)]
    if len(manifests) > 1:
        raise UnloadError(f"{location}: more than one manifest ({', '.join(m.base_name for m in manifests)})")
    if manifests:
        return _from_manifest(fs, location, manifests[0])
    candidates = [c for c in children if PART_NAME.match(c.base_name)]
    ignored = [c.base_name for c in children if not PART_NAME.match(c.base_name)]
    if not candidates:
        return UnloadParts(parts=[], ignored=ignored)
    newest = max(int(c.mtime_ns or 0) for c in candidates)
    cutoff = newest - int(stale_after_s * 1e9)
    fresh = [c for c in candidates if int(c.mtime_ns or 0) >= cutoff]
    stale = sorted(c.base_name for c in candidates if c not in fresh)
    parts = sorted((_part_of(c, _child_uri(location, c)) for c in fresh), key=lambda p: p.name)
    return UnloadParts(parts=parts, ignored=ignored, stale=stale)
