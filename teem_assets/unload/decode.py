"""Decode whole UNLOAD records held in memory into a typed Arrow table plus the malformed records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from teem_assets.redshift_types import EARLIEST, RedshiftType, arrow_schema
from teem_assets.unload import scanner
from teem_assets.unload.typed import before_earliest, to_typed

ESCAPED_NULL_POLICIES = {
    "null": scanner.NULL_POLICY_NULL,
    "string": scanner.NULL_POLICY_STRING,
    "error": scanner.NULL_POLICY_ERROR,
}
BAD_VALUE = "bad_value"
OUT_OF_RANGE = "out_of_range"
MAX_BLOCK_BYTES = 2**31 - 1  # Arrow string offsets are int32


@dataclass(frozen=True)
class DecodeOptions:
    """`escaped_null`: what the escaped NULL token `\\\\N` in a text column means (spec: escaped_null)."""

    escaped_null: str = "null"

    def __post_init__(self) -> None:
        if self.escaped_null not in ESCAPED_NULL_POLICIES:
            raise ValueError(
                f"escaped_null must be one of {', '.join(ESCAPED_NULL_POLICIES)}, not {self.escaped_null!r}"
            )


@dataclass(frozen=True)
class Malformed:
    """A record that could not be decoded: where it is, why, and its raw bytes."""

    file: str
    line: int
    record: int
    reason: str
    detail: str
    raw: bytes

    def describe(self) -> str:
        return f"{self.file}:{self.line}: record {self.record}: {self.reason}: {self.detail}"


@dataclass
class DecodedChunk:
    table: pa.Table
    records: int
    lines: int
    malformed: list[Malformed] = field(default_factory=list)


Columns = Sequence[tuple[str, RedshiftType]]


def _detail(reason: str, column: str | None) -> str:
    return f"in column {column}" if column else reason


def decode_records(
    data: bytes | bytearray | memoryview,
    columns: Columns,
    *,
    file: str,
    first_line: int = 1,
    first_record: int = 1,
    options: DecodeOptions = DecodeOptions(),
) -> DecodedChunk:
    """Decode `data`, which holds whole records (it ends at a record end or at the end of the file).

    `first_line` and `first_record` number the first record, so that errors name the file's own line.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if len(buf) > MAX_BLOCK_BYTES:
        raise ValueError(f"{file}: more than {MAX_BLOCK_BYTES} bytes without a record end: not an UNLOAD file")
    ncols = len(columns)
    capacity = scanner.count_lf(buf) + 1
    any_nul = scanner.holds_nul(buf)
    field_start = np.empty(capacity * ncols, dtype=np.int64)
    field_end = np.empty(capacity * ncols, dtype=np.int64)
    field_kind = np.empty(capacity * ncols, dtype=np.uint8)
    col_bytes = np.zeros(ncols, dtype=np.int64)
    rec_start = np.empty(capacity, dtype=np.int64)
    rec_end = np.empty(capacity, dtype=np.int64)
    rec_line = np.empty(capacity, dtype=np.int64)
    rec_status = np.empty(capacity, dtype=np.int8)
    rec_column = np.empty(capacity, dtype=np.int32)
    is_text = np.array([1 if rtype.is_text else 0 for _, rtype in columns], dtype=np.uint8)
    nrec, ngood, lines = scanner.scan(
        buf,
        ncols,
        is_text,
        ESCAPED_NULL_POLICIES[options.escaped_null],
        field_start,
        field_end,
        field_kind,
        col_bytes,
        rec_start,
        rec_end,
        rec_line,
        rec_status,
        rec_column,
    )
    names = [name for name, _ in columns]

    def malformed_at(index: int, reason: str, detail: str) -> Malformed:
        return Malformed(
            file=file,
            line=first_line + int(rec_line[index]),
            record=first_record + index,
            reason=reason,
            detail=detail,
            raw=bytes(buf[rec_start[index] : rec_end[index]]),
        )

    malformed: list[Malformed] = []
    status = rec_status[:nrec]
    for index in np.flatnonzero(status != scanner.OK):
        code = int(status[index])
        col = int(rec_column[index])
        column = names[col] if code != scanner.FIELD_COUNT and col < ncols else None
        detail = f"expected {ncols} fields" if code == scanner.FIELD_COUNT else _detail(scanner.REASONS[code], column)
        malformed.append(malformed_at(int(index), scanner.REASONS[code], detail))

    offsets, starts, data, valid = scanner.gather_columns(
        buf, field_start, field_end, field_kind, col_bytes, ngood, ncols
    )
    good_records = np.flatnonzero(status == scanner.OK)
    arrays: list[pa.Array] = []
    bad_rows: dict[int, tuple[str, str]] = {}  # row: reason, detail
    for col, (name, rtype) in enumerate(columns):
        text = pa.StringArray.from_buffers(
            ngood,
            pa.py_buffer(offsets[col]),
            pa.py_buffer(data[starts[col] : starts[col + 1]]),
            pa.py_buffer(np.packbits(valid[col], bitorder="little")),
        )
        typed, bad = to_typed(text, rtype)
        for row in bad:
            bad_rows.setdefault(row, (BAD_VALUE, f"invalid {rtype} value {text[row].as_py()!r} in column {name}"))
        for row in before_earliest(typed, rtype):
            detail = f"{rtype} value {text[row].as_py()!r} before {EARLIEST.date().isoformat()} in column {name}"
            bad_rows.setdefault(row, (OUT_OF_RANGE, detail))
        if any_nul and rtype.is_text:  # neither Redshift's VARCHAR nor PostgreSQL's text holds a NUL character
            nul = pc.fill_null(pc.match_substring(text, "\x00"), False).to_numpy(zero_copy_only=False)
            for row in np.flatnonzero(nul):
                bad_rows.setdefault(int(row), (BAD_VALUE, f"a NUL byte in column {name}"))
        arrays.append(typed)
    table = pa.Table.from_arrays(arrays, schema=arrow_schema(columns))
    if bad_rows:
        keep = np.ones(ngood, dtype=bool)
        for row, (reason, detail) in bad_rows.items():
            keep[row] = False
            malformed.append(malformed_at(int(good_records[row]), reason, detail))
        table = table.filter(pa.array(keep))
        malformed.sort(key=lambda m: m.record)
    return DecodedChunk(table=table, records=nrec, lines=lines, malformed=malformed)
