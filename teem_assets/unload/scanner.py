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


@njit(cache=True, nogil=True)
def _is_end(buf: np.ndarray, pos: int, n: int) -> bool:
    return pos >= n or buf[pos] == PIPE or buf[pos] == LF


@njit(cache=True, nogil=True)
def _utf8_ok(out: np.ndarray, start: int, end: int) -> bool:
    i = start
    while i < end:
        b = out[i]
        if b < 0x80:
            i += 1
            continue
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
            return False
        if i + need >= end:
            return False
        c = out[i + 1]
        if c < lo or c > hi:
            return False
        for k in range(2, need + 1):
            c = out[i + k]
            if c < 0x80 or c > 0xBF:
                return False
        i += need + 1
    return True


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


@njit(cache=True, nogil=True)
def scan(
    buf: np.ndarray,
    ncols: int,
    is_text: np.ndarray,
    null_policy: int,
    out: np.ndarray,
    field_end: np.ndarray,
    field_valid: np.ndarray,
    rec_start: np.ndarray,
    rec_end: np.ndarray,
    rec_line: np.ndarray,
    rec_status: np.ndarray,
    rec_column: np.ndarray,
) -> tuple[int, int, int, int]:
    """Scan whole records of `buf`; return (records, good records, bytes of `out` used, physical lines).

    Output arrays must hold one entry per possible record (LF count + 1) and `field_end` one more than
    records * ncols; `field_end[0]` is 0 and field k of good record g ends at `field_end[g*ncols+k+1]`.
    """
    n = buf.shape[0]
    pos = 0
    line = 0
    nrec = 0
    ngood = 0
    opos = 0
    field_end[0] = 0
    while pos < n:
        start = pos
        start_line = line
        record_out = opos
        col = 0
        status = OK
        while True:
            if col >= ncols:
                status = FIELD_COUNT
                break
            field_out = opos
            valid = 1
            text = is_text[col] == 1
            if pos < n and buf[pos] == QUOTE:
                if (
                    pos + 3 < n
                    and buf[pos + 1] == BACKSLASH
                    and buf[pos + 2] == LETTER_N
                    and buf[pos + 3] == QUOTE
                    and _is_end(buf, pos + 4, n)
                ):
                    valid = 0
                    pos += 4
                elif (
                    pos + 4 < n
                    and buf[pos + 1] == BACKSLASH
                    and buf[pos + 2] == BACKSLASH
                    and buf[pos + 3] == LETTER_N
                    and buf[pos + 4] == QUOTE
                    and _is_end(buf, pos + 5, n)
                ):
                    pos += 5
                    if not text or null_policy == NULL_POLICY_NULL:
                        valid = 0
                    elif null_policy == NULL_POLICY_ERROR:
                        status = AMBIGUOUS_NULL
                    else:
                        out[opos] = BACKSLASH
                        out[opos + 1] = LETTER_N
                        opos += 2
                else:
                    pos += 1
                    closed = False
                    while pos < n:
                        c = buf[pos]
                        if c == BACKSLASH:
                            if pos + 1 >= n:
                                status = DANGLING_ESCAPE
                                pos += 1
                                break
                            d = buf[pos + 1]
                            if d == LF:
                                line += 1
                            elif not (d == PIPE or d == QUOTE or d == SQUOTE or d == BACKSLASH or d == CR):
                                status = INVALID_ESCAPE
                                break
                            out[opos] = d
                            opos += 1
                            pos += 2
                        elif c == QUOTE:
                            pos += 1
                            closed = True
                            break
                        elif c == LF:
                            break
                        elif c == CR:
                            status = RAW_CR
                            break
                        else:
                            out[opos] = c
                            opos += 1
                            pos += 1
                    if status == OK and not closed:
                        status = UNTERMINATED_QUOTE
                    if status == OK and not _is_end(buf, pos, n):
                        status = RAW_CR if buf[pos] == CR else STRAY_AFTER_QUOTE
            else:
                if pos + 1 < n and buf[pos] == BACKSLASH and buf[pos + 1] == LETTER_N and _is_end(buf, pos + 2, n):
                    valid = 0
                    pos += 2
                elif (
                    pos + 2 < n
                    and buf[pos] == BACKSLASH
                    and buf[pos + 1] == BACKSLASH
                    and buf[pos + 2] == LETTER_N
                    and _is_end(buf, pos + 3, n)
                ):
                    pos += 3
                    if not text or null_policy == NULL_POLICY_NULL:
                        valid = 0
                    elif null_policy == NULL_POLICY_ERROR:
                        status = AMBIGUOUS_NULL
                    else:
                        out[opos] = BACKSLASH
                        out[opos + 1] = LETTER_N
                        opos += 2
                else:
                    while pos < n:
                        c = buf[pos]
                        if c == BACKSLASH:
                            if pos + 1 >= n:
                                status = DANGLING_ESCAPE
                                pos += 1
                                break
                            d = buf[pos + 1]
                            if d == LF:
                                line += 1
                            elif not (d == PIPE or d == QUOTE or d == SQUOTE or d == BACKSLASH or d == CR):
                                status = INVALID_ESCAPE
                                break
                            out[opos] = d
                            opos += 1
                            pos += 2
                        elif c == PIPE or c == LF:
                            break
                        elif c == CR:
                            status = RAW_CR
                            break
                        else:
                            out[opos] = c
                            opos += 1
                            pos += 1
            if status == OK and not _utf8_ok(out, field_out, opos):
                status = INVALID_UTF8
            if status != OK:
                break
            field_end[ngood * ncols + col + 1] = opos
            field_valid[ngood * ncols + col] = valid
            col += 1
            if pos >= n or buf[pos] == LF:
                if col != ncols:
                    status = FIELD_COUNT
                break
            pos += 1  # the delimiter
        if status != OK:
            opos = record_out
            rec_column[nrec] = col
            pos, line = _skip_record(buf, pos, n, line)
        rec_start[nrec] = start
        rec_end[nrec] = pos
        rec_line[nrec] = start_line
        rec_status[nrec] = status
        nrec += 1
        if status == OK:
            ngood += 1
        if pos < n:
            pos += 1  # the LF that ends the record
            line += 1
    return nrec, ngood, opos, line


@njit(cache=True, nogil=True)
def gather_columns(
    out: np.ndarray, field_end: np.ndarray, ngood: int, ncols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regroup the row-major fields of `out` column by column, ready to be Arrow string arrays.

    Returns int32 offsets of shape (ncols, ngood + 1), each column's counted from 0; where each column's
    bytes start in `data`; and `data`, every column's bytes back to back.
    """
    offsets = np.empty((ncols, ngood + 1), dtype=np.int32)
    for col in range(ncols):
        offsets[col, 0] = 0
    for row in range(ngood):
        base = row * ncols
        for col in range(ncols):
            offsets[col, row + 1] = offsets[col, row] + (field_end[base + col + 1] - field_end[base + col])
    starts = np.empty(ncols + 1, dtype=np.int64)
    starts[0] = 0
    for col in range(ncols):
        starts[col + 1] = starts[col] + offsets[col, ngood]
    data = np.empty(starts[ncols], dtype=np.uint8)
    for row in range(ngood):
        base = row * ncols
        for col in range(ncols):
            source = field_end[base + col]
            target = starts[col] + offsets[col, row]
            for k in range(field_end[base + col + 1] - source):
                data[target + k] = out[source + k]
    return offsets, starts, data


def count_lf(buf: np.ndarray) -> int:
    return int(np.count_nonzero(buf == LF))
