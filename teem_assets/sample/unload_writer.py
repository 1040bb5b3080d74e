"""Writes rows exactly as Redshift's UNLOAD does with DELIMITER '|' NULL AS '\\\\N' ESCAPE ADDQUOTES PARALLEL ON
MAXFILESIZE: one file per slice, `_part_NN` splits past the size limit, optional GZIP and MANIFEST VERBOSE.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from teem_assets.redshift_types import Kind, RedshiftType

DEFAULT_MAX_FILE_SIZE = 256 * 1024 * 1024
_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", '"': '\\"', "'": "\\'", "\n": "\\\n", "\r": "\\\r"})
TEXT_NULL = '"\\\\N"'  # ESCAPE applies to the NULL AS string too: a NULL in a text column is "\\N"
OTHER_NULL = '"\\N"'


def format_timestamp(value: dt.datetime) -> str:
    text = value.replace(microsecond=0).isoformat(sep=" ")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _formatter(rtype: RedshiftType) -> Callable[[Any], str]:
    kind = rtype.kind
    if rtype.is_text:
        return lambda v: '"' + v.translate(_ESCAPES) + '"'
    if kind is Kind.BOOLEAN:
        return lambda v: '"t"' if v else '"f"'
    if kind in (Kind.SMALLINT, Kind.INTEGER, Kind.BIGINT):
        return lambda v: f'"{v}"'
    if kind is Kind.DECIMAL:
        quantum = Decimal(1).scaleb(-rtype.scale)
        return lambda v: f'"{Decimal(v).quantize(quantum)}"'
    if kind in (Kind.REAL, Kind.DOUBLE):
        return lambda v: f'"{_float_text(v)}"'
    if kind is Kind.DATE:
        return lambda v: f'"{v.isoformat()}"'
    if kind is Kind.TIMESTAMP:
        return lambda v: f'"{format_timestamp(v)}"'
    if kind is Kind.TIMESTAMPTZ:
        return lambda v: f'"{format_timestamp(v.astimezone(dt.UTC).replace(tzinfo=None))}+00"'
    raise ValueError(f"no UNLOAD text for {rtype}")


def _float_text(value: float) -> str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def record_encoder(types: Sequence[RedshiftType]) -> Callable[[Sequence[Any]], str]:
    """A function that renders one row as an UNLOAD record, LF included."""
    formatters = [_formatter(t) for t in types]
    nulls = [TEXT_NULL if t.is_text else OTHER_NULL for t in types]
    pairs = list(zip(formatters, nulls))

    def encode(row: Sequence[Any]) -> str:
        return "|".join(null if v is None else fmt(v) for (fmt, null), v in zip(pairs, row)) + "\n"

    return encode


@dataclass
class _SliceWriter:
    folder: str
    prefix: str
    slice_number: int
    max_file_size: int
    compress: bool
    part: int = -1
    size: int = 0
    records: int = 0
    handle: IO[bytes] | None = None
    finished: list[tuple[str, int]] = field(default_factory=list)

    def _path(self) -> str:
        suffix = ".gz" if self.compress else ""
        return os.path.join(self.folder, f"{self.prefix}{self.slice_number:04d}_part_{self.part:02d}{suffix}")

    def _roll(self) -> None:
        self.close()
        self.part += 1
        self.size = 0
        self.records = 0
        path = self._path()
        self.handle = gzip.open(path, "wb", compresslevel=1) if self.compress else open(path, "wb")

    def write(self, record: bytes) -> None:
        if self.handle is None or (self.size and self.size + len(record) > self.max_file_size):
            self._roll()
        assert self.handle is not None
        self.handle.write(record)
        self.size += len(record)
        self.records += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.finished.append((self._path(), self.records))
            self.handle = None


@dataclass(frozen=True)
class WrittenUnload:
    files: list[str]
    records: int


def write_unload(
    rows: Iterable[Sequence[Any]],
    types: Sequence[RedshiftType],
    folder: str,
    prefix: str,
    *,
    slices: int = 2,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    compress: bool = False,
    manifest: bool = False,
    url_prefix: str | None = None,
) -> WrittenUnload:
    """Write `rows` into `folder` as `<prefix><slice>_part_<nn>`, rows spread over the slices in turn.

    Like Redshift, an empty slice writes no file. With `manifest`, `<prefix>manifest` lists every file
    with its size and record count (MANIFEST VERBOSE); `url_prefix` replaces the folder in its URLs.
    """
    os.makedirs(folder, exist_ok=True)
    encode = record_encoder(types)
    writers = [_SliceWriter(folder, prefix, s, max_file_size, compress) for s in range(slices)]
    total = 0
    for index, row in enumerate(rows):
        writers[index % slices].write(encode(row).encode("utf-8"))
        total += 1
    for writer in writers:
        writer.close()
    finished = sorted(item for writer in writers for item in writer.finished)
    if manifest:
        base = (url_prefix or folder).rstrip("/")
        entries = [
            {
                "url": f"{base}/{os.path.basename(path)}",
                "meta": {"content_length": os.path.getsize(path), "record_count": count},
            }
            for path, count in finished
        ]
        document = {
            "entries": entries,
            "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries), "record_count": total},
        }
        with open(os.path.join(folder, f"{prefix}manifest"), "w") as handle:
            json.dump(document, handle, indent=2)
    return WrittenUnload(files=[path for path, _ in finished], records=total)
