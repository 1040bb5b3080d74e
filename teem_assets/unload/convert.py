"""One unload part to typed Parquet: stream it in blocks of whole records, decode, write, quarantine.

This is the work of one Spark task; it also runs on its own (`teem check-unload`).
"""

from __future__ import annotations

import mmap
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from teem_assets.unload.decode import Columns, DecodedChunk, DecodeOptions, Malformed, arrow_schema, decode_records
from teem_assets.unload.location import join, resolve
from teem_assets.unload.parts import Part, UnloadError
from teem_assets.unload.rules import RuleSet, RuleTally

BLOCK_SIZE = 32 * 1024 * 1024
MALFORMED_SAMPLE = 20
QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("record", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),
    ]
)
# A column chunk whose dictionary outgrows 8 KiB is written plain from there on: the default 1 MiB made
# pyarrow build a dictionary of every distinct key, URL and time first (measured: 30% of the conversion's
# write time, and files 8% larger than with the small limit).
PARQUET_OPTIONS = {
    "compression": "snappy",
    "coerce_timestamps": "us",
    "use_deprecated_int96_timestamps": False,
    "dictionary_pagesize_limit": 8 << 10,
}


def _record_end(data: np.ndarray) -> int:
    """Offset just past the last unescaped LF of `data`, or 0 when it holds no complete record."""
    stop = len(data)
    while stop > 0:
        low = max(0, stop - 65536)
        for lf in np.flatnonzero(data[low:stop] == 0x0A)[::-1] + low:
            slashes = 0
            while lf - slashes - 1 >= 0 and data[lf - slashes - 1] == 0x5C:
                slashes += 1
            if slashes % 2 == 0:
                return int(lf) + 1
        stop = low
    return 0


def iter_record_blocks(stream: pa.NativeFile, block_size: int = BLOCK_SIZE) -> Iterator[memoryview]:
    """Blocks of whole records read straight into fresh buffers; a record longer than a block grows it."""
    carry = b""
    at_end = False
    while not at_end:
        buffer = bytearray(len(carry) + block_size)
        buffer[: len(carry)] = carry
        filled = len(carry)
        view = memoryview(buffer)
        while filled < len(buffer):
            count = stream.readinto(view[filled:])
            if count == 0:
                at_end = True
                break
            filled += count
        cut = filled if at_end else _record_end(np.frombuffer(buffer, dtype=np.uint8, count=filled))
        if cut:
            yield view[:cut]
        carry = bytes(view[cut:filled])


def _mapped_blocks(path: str, block_size: int) -> Iterator[memoryview]:
    """Blocks of an uncompressed local file, straight from a memory map: nothing is copied. The pages of a
    block are let go once the next one is asked for, so the process's memory stays that of a block or two
    whatever the part's size (a mapped file's pages count as the process's own, and a YARN container's).
    The map closes when the last view of it goes (the decoder may still hold one)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            return
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    data = memoryview(mapped)
    array = np.frombuffer(data, dtype=np.uint8)
    start = released = 0
    while start < size:
        stop = min(size, start + block_size)
        while stop < size:
            cut = _record_end(array[start:stop])
            if cut:
                stop = start + cut
                break
            stop = min(size, stop + block_size)  # a record longer than a block
        yield data[start:stop]
        done = stop // mmap.PAGESIZE * mmap.PAGESIZE
        if done > released:
            mapped.madvise(mmap.MADV_DONTNEED, released, done - released)
            released = done
        start = stop


def _blocks(part: Part, block_size: int) -> Iterator[memoryview]:
    fs, path = resolve(part.uri)
    try:
        if isinstance(fs, pafs.LocalFileSystem) and not part.compressed:
            yield from _mapped_blocks(path, block_size)
            return
        with fs.open_input_stream(path, compression="detect") as stream:
            yield from iter_record_blocks(stream, block_size)
    except (OSError, pa.ArrowException) as error:
        raise UnloadError(f"{part.uri}: cannot read the file: {error}") from error


UTF8_BOM = b"\xef\xbb\xbf"


def decode_part(
    part: Part, columns: Columns, options: DecodeOptions, block_size: int = BLOCK_SIZE
) -> Iterator[tuple[DecodedChunk, int]]:
    """Decode a part block by block; yields each decoded block with the count of decoded bytes. A UTF-8 byte
    order mark at the start of the part (a file saved again by an editor; Redshift writes none) is not data."""
    line, record = 1, 1
    for block in _blocks(part, block_size):
        data = block[len(UTF8_BOM) :] if record == 1 and bytes(block[: len(UTF8_BOM)]) == UTF8_BOM else block
        chunk = decode_records(data, columns, file=part.uri, first_line=line, first_record=record, options=options)
        line += chunk.lines
        record += chunk.records
        yield chunk, len(block)


@dataclass
class PartResult:
    """What converting one part did: counted on the worker, reported to the driver."""

    part: str
    bytes_read: int
    bytes_decoded: int = 0
    records: int = 0
    rows: int = 0
    malformed: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    malformed_sample: list[Malformed] = field(default_factory=list)
    output: str | None = None
    quarantine: str | None = None
    rules: RuleTally = field(default_factory=RuleTally)


def _write_atomically(uri: str, schema: pa.Schema, tables: Iterator[pa.Table]) -> None:
    """Write to a temporary name beside `uri` and move it into place, so no reader sees half a file."""
    fs, path = resolve(uri)
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    try:
        with fs.open_output_stream(temporary) as sink, pq.ParquetWriter(sink, schema, **PARQUET_OPTIONS) as writer:
            for table in tables:
                writer.write_table(table)
        fs.move(temporary, path)
    except BaseException:
        try:
            fs.delete_file(temporary)
        except OSError:
            pass
        raise


def quarantine_table(malformed: list[Malformed]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"file": m.file, "line": m.line, "record": m.record, "reason": m.reason, "detail": m.detail, "raw": m.raw}
            for m in malformed
        ],
        schema=QUARANTINE_SCHEMA,
    )


def convert_part(
    part: Part,
    columns: Columns,
    out_dir: str,
    quarantine_dir: str,
    options: DecodeOptions = DecodeOptions(),
    block_size: int = BLOCK_SIZE,
    rules: RuleSet | None = None,
) -> PartResult:
    """Convert one part to `<out_dir>/<part>.parquet`; malformed records go to `<quarantine_dir>/<part>.parquet`;
    the rows are checked against `rules` as they pass.

    Output names depend only on the part, so a retried task replaces its own file and adds nothing.
    """
    result = PartResult(part=part.uri, bytes_read=part.size)
    reasons: Counter[str] = Counter()
    quarantined: list[Malformed] = []

    def tables() -> Iterator[pa.Table]:
        for chunk, decoded_bytes in decode_part(part, columns, options, block_size):
            result.bytes_decoded += decoded_bytes
            result.records += chunk.records
            result.rows += chunk.table.num_rows
            quarantined.extend(chunk.malformed)
            reasons.update(m.reason for m in chunk.malformed)
            if rules is not None:
                result.rules.add(chunk.table, rules)
            yield chunk.table

    result.output = join(out_dir, f"{part.name}.parquet")
    _write_atomically(result.output, arrow_schema(columns), tables())
    result.malformed = sum(reasons.values())
    result.malformed_by_reason = dict(reasons)
    result.malformed_sample = quarantined[:MALFORMED_SAMPLE]
    if quarantined:
        result.quarantine = join(quarantine_dir, f"{part.name}.parquet")
        _write_atomically(result.quarantine, QUARANTINE_SCHEMA, iter([quarantine_table(quarantined)]))
    if part.expected_records is not None and part.expected_records != result.records:
        raise UnloadError(
            f"{part.uri}: the manifest says {part.expected_records} records, the file holds {result.records}"
        )
    return result
