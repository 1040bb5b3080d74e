"""The byte-level scanner of Redshift UNLOAD text (spec/UNLOAD_FORMAT.md), compiled with numba.

`scan` walks a buffer of whole records once. For every record it notes where it starts and ends, its
physical line and whether it is malformed (and why); the fields of well-formed records are unescaped into
one output buffer in row-major order, with an end offset and a validity flag per field, ready to be wrapped
as an Arrow array without copying.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LF = 10
CR = 13
QUOTE = 34
SQUOTE = 39
BACKSLASH = 92
PIPE = 124
LETTER_N = 78

# Record status codes; 0 is a good record.
OK = 0
UNTERMINATED_QUOTE = 1
FIELD_COUNT = 2
DANGLING_ESCAPE = 3
INVALID_UTF8 = 4
STRAY_AFTER_QUOTE = 5
INVALID_ESCAPE = 6
RAW_CR = 7
AMBIGUOUS_NULL = 8

REASONS = {
    UNTERMINATED_QUOTE: "unterminated_quote",
    FIELD_COUNT: "field_count",
    DANGLING_ESCAPE: "dangling_escape",
    INVALID_UTF8: "invalid_utf8",
    STRAY_AFTER_QUOTE: "stray_after_quote",
    INVALID_ESCAPE: "invalid_escape",
    RAW_CR: "raw_cr",
    AMBIGUOUS_NULL: "ambiguous_null",
}

# escaped_null policies: what a field `\\N` (the escaped NULL token) means.
NULL_POLICY_NULL = 0
NULL_POLICY_STRING = 1
NULL_POLICY_ERROR = 2


# Byte classes for the scanner's inner loop.
_PLAIN, _BACKSLASH, _QUOTE, _LF, _CR, _PIPE, _HIGH = 0, 1, 2, 3, 4, 5, 6
BYTE_CLASS = np.zeros(256, dtype=np.uint8)
BYTE_CLASS[BACKSLASH] = _BACKSLASH
BYTE_CLASS[QUOTE] = _QUOTE
BYTE_CLASS[LF] = _LF
BYTE_CLASS[CR] = _CR
BYTE_CLASS[PIPE] = _PIPE
BYTE_CLASS[0x80:] = _HIGH


@njit(cache=True, nogil=True)
def _is_end(buf: np.ndarray, pos: int, n: int) -> bool:
    return pos >= n or buf[pos] == PIPE or buf[pos] == LF


@njit(cache=True, nogil=True)
def _utf8_length(buf: np.ndarray, pos: int, n: int) -> int:
    """Length of the well-formed UTF-8 sequence that starts with a byte >= 0x80 at `pos`, or 0."""
    b = buf[pos]
    if 0xC2 <= b <= 0xDF:
        need, lo, hi = 1, 0x80, 0xBF
    elif b == 0xE0:
        need, lo, hi = 2, 0xA0, 0xBF
    elif (0xE1 <= b <= 0xEC) or b == 0xEE or b == 0xEF:
        need, lo, hi = 2, 0x80, 0xBF
    elif b == 0xED:
        need, lo, hi = 2, 0x80, 0x9F
    elif b == 0xF0:
        need, lo, hi = 3, 0x90, 0xBF
    elif 0xF1 <= b <= 0xF3:
        need, lo, hi = 3, 0x80, 0xBF
    elif b == 0xF4:
        need, lo, hi = 3, 0x80, 0x8F
    else:
        return 0
    if pos + need >= n:
        return 0
    c = buf[pos + 1]
    if c < lo or c > hi:
        return 0
    for k in range(2, need + 1):
        c = buf[pos + k]
        if c < 0x80 or c > 0xBF:
            return 0
    return need + 1


@njit(cache=True, nogil=True)
def _skip_record(buf: np.ndarray, pos: int, n: int, line: int) -> tuple[int, int]:
    """Advance to the unescaped LF that ends the record; return (position of that LF or n, line)."""
    while pos < n:
        c = buf[pos]
        if c == BACKSLASH:
            if pos + 1 < n and buf[pos + 1] == LF:
                line += 1
            pos += 2
            continue
        if c == LF:
            return pos, line
        pos += 1
    return n, line


@njit(cache=True, nogil=True, inline="always")
def _field_content(buf: np.ndarray, pos: int, n: int, quoted: bool, line: int) -> tuple[int, int, int, int]:
    """Find the end of a field's content starting at `pos`: the closing quote or, unquoted, the delimiter
    or LF. Returns (status, content end, escapes seen, line)."""
    escapes = 0
    while pos < n:
        c = buf[pos]
        k = BYTE_CLASS[c]
        if k == _PLAIN or (k == _PIPE and quoted):
            pos += 1
        elif k == _HIGH:
            length = _utf8_length(buf, pos, n)
            if length == 0:
                return INVALID_UTF8, pos, escapes, line
            pos += length
        elif k == _BACKSLASH:
            if pos + 1 >= n:
                return DANGLING_ESCAPE, n, escapes, line
            d = buf[pos + 1]
            if d == LF:
                line += 1
            elif not (d == PIPE or d == QUOTE or d == SQUOTE or d == BACKSLASH or d == CR):
                return INVALID_ESCAPE, pos, escapes, line
            escapes += 1
            pos += 2
        elif k == _QUOTE:
            if quoted:
                return OK, pos, escapes, line
            pos += 1  # a quote inside an unquoted field is text
        elif k == _CR:
            return RAW_CR, pos, escapes, line
        elif quoted:  # an unescaped LF inside quotes
            return UNTERMINATED_QUOTE, pos, escapes, line
        else:  # the delimiter or LF that ends an unquoted field
            return OK, pos, escapes, line
    return (UNTERMINATED_QUOTE if quoted else OK), pos, escapes, line


@njit(cache=True, nogil=True, inline="always")
def _null_token(buf: np.ndarray, pos: int, n: int) -> int:
    """At a field start, quoted or not: 1 for the NULL token (backslash, N), 2 for the escaped one
    (backslash, backslash, N), each only as the whole field; else 0."""
    quoted = pos < n and buf[pos] == QUOTE
    start = pos + 1 if quoted else pos
    if start >= n or buf[start] != BACKSLASH:
        return 0
    for slashes in (1, 2):
        end = start + slashes + 1  # just past the N
        if end + (1 if quoted else 0) > n:
            continue
        ok = buf[start + slashes] == LETTER_N
        for j in range(slashes):
            ok = ok and buf[start + j] == BACKSLASH
        if not ok:
            continue
        if quoted:
            if buf[end] != QUOTE:
                continue
            end += 1
        if _is_end(buf, end, n):
            return slashes
    return 0


# What `scan` notes about each field for `gather_columns`.
FIELD_PLAIN = 0  # the raw bytes are the value
FIELD_ESCAPED = 1  # the raw bytes hold escapes to undo
FIELD_NULL = 2
FIELD_NULL_TEXT = 3  # the escaped NULL token read as the text \N (escaped_null=string)


@njit(cache=True, nogil=True)
def scan(
    buf: np.ndarray,
    ncols: int,
    is_text: np.ndarray,
    null_policy: int,
    field_start: np.ndarray,
    field_end: np.ndarray,
    field_kind: np.ndarray,
    col_bytes: np.ndarray,
    rec_start: np.ndarray,
    rec_end: np.ndarray,
    rec_line: np.ndarray,
    rec_status: np.ndarray,
    rec_column: np.ndarray,
) -> tuple[int, int, int]:
    """Scan whole records of `buf`; return (records, good records, physical lines).

    Nothing is copied here: field k of good record g is `buf[field_start[i]:field_end[i]]` with
    i = g * ncols + k, read as `field_kind[i]`; `col_bytes` (zeroed by the caller) receives each column's
    decoded length over the good records. Record arrays hold one entry per possible record (LF count
    + 1) and field arrays that times ncols.
    """
    n = buf.shape[0]
    pos = 0
    line = 0
    nrec = 0
    ngood = 0
    while pos < n:
        start = pos
        start_line = line
        col = 0
        status = OK
        base = ngood * ncols
        while True:
            if col >= ncols:
                status = FIELD_COUNT
                break
            token = _null_token(buf, pos, n)
            quoted = pos < n and buf[pos] == QUOTE
            index = base + col
            if token == 1:
                field_kind[index] = FIELD_NULL
                pos += 4 if quoted else 2
            elif token == 2:
                pos += 5 if quoted else 3
                if is_text[col] == 0 or null_policy == NULL_POLICY_NULL:
                    field_kind[index] = FIELD_NULL
                elif null_policy == NULL_POLICY_ERROR:
                    status = AMBIGUOUS_NULL
                    break
                else:
                    field_kind[index] = FIELD_NULL_TEXT
            else:
                content = pos + 1 if quoted else pos
                status, end, escapes, line = _field_content(buf, content, n, quoted, line)
                if status != OK:
                    break
                field_start[index] = content
                field_end[index] = end
                field_kind[index] = FIELD_ESCAPED if escapes else FIELD_PLAIN
                pos = end + 1 if quoted else end
                if quoted and not _is_end(buf, pos, n):
                    status = RAW_CR if buf[pos] == CR else STRAY_AFTER_QUOTE
                    break
            col += 1
            if pos >= n or buf[pos] == LF:
                if col != ncols:
                    status = FIELD_COUNT
                break
            pos += 1  # the delimiter
        if status != OK:
            rec_column[nrec] = col
            pos, line = _skip_record(buf, pos, n, line)
        else:
            for c in range(ncols):
                kind = field_kind[base + c]
                if kind == FIELD_NULL_TEXT:
                    col_bytes[c] += 2
                elif kind != FIELD_NULL:
                    col_bytes[c] += field_end[base + c] - field_start[base + c]
            ngood += 1
        rec_start[nrec] = start
        rec_end[nrec] = pos
        rec_line[nrec] = start_line
        rec_status[nrec] = status
        nrec += 1
        if pos < n:
            pos += 1  # the LF that ends the record
            line += 1
    return nrec, ngood, line


@njit(cache=True, nogil=True)
def gather_columns(
    buf: np.ndarray,
    field_start: np.ndarray,
    field_end: np.ndarray,
    field_kind: np.ndarray,
    col_bytes: np.ndarray,
    ngood: int,
    ncols: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Copy each good field's value out of `buf`, unescaping where needed, column after column.

    Returns int32 offsets of shape (ncols, ngood + 1), each column's counted from 0; where each column's
    bytes start in `data`; `data`, every column's bytes back to back; and validity (1 = not NULL) of
    shape (ncols, ngood), so that each column is an Arrow string array as it stands.
    """
    starts = np.empty(ncols + 1, dtype=np.int64)
    starts[0] = 0
    for col in range(ncols):
        starts[col + 1] = starts[col] + col_bytes[col]
    data = np.empty(starts[ncols], dtype=np.uint8)
    offsets = np.empty((ncols, ngood + 1), dtype=np.int32)
    valid = np.ones((ncols, ngood), dtype=np.uint8)
    written = np.zeros(ncols, dtype=np.int64)
    for col in range(ncols):
        offsets[col, 0] = 0
    for row in range(ngood):
        base = row * ncols
        for col in range(ncols):
            index = base + col
            kind = field_kind[index]
            target = starts[col] + written[col]
            if kind == FIELD_PLAIN:
                source = field_start[index]
                length = field_end[index] - source
                for k in range(length):
                    data[target + k] = buf[source + k]
                written[col] += length
            elif kind == FIELD_ESCAPED:
                source = field_start[index]
                stop = field_end[index]
                length = 0
                while source < stop:
                    if buf[source] == BACKSLASH:
                        source += 1
                    data[target + length] = buf[source]
                    length += 1
                    source += 1
                written[col] += length
            elif kind == FIELD_NULL_TEXT:
                data[target] = BACKSLASH
                data[target + 1] = LETTER_N
                written[col] += 2
            else:
                valid[col, row] = 0
            offsets[col, row + 1] = written[col]
    return offsets, starts, data, valid


def count_lf(buf: np.ndarray) -> int:
    return int(np.count_nonzero(buf == LF))


def holds_nul(buf: np.ndarray) -> bool:
    """Whether `buf` holds a NUL byte anywhere (a vectorised minimum: a tenth of a per-column search's cost)."""
    return len(buf) > 0 and int(buf.min()) == 0
