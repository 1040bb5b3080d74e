"""The decoder beyond the corpus: block boundaries, record numbering, values that are not of their type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from teem_assets.redshift_types import parse_columns_spec
from teem_assets.unload.convert import iter_record_blocks
from teem_assets.unload.decode import DecodeOptions, decode_records

TEXT = parse_columns_spec("a:varchar(10),b:varchar(10)")


def test_blocks_end_only_at_unescaped_line_feeds():
    data = b'"a\\\nb"|"x"\n"c\\\\"|"\\\\\\\ny"\n"e"|"f"'
    for size in range(1, len(data) + 1):
        blocks = list(iter_record_blocks(pa.BufferReader(data), size))
        assert b"".join(blocks) == data
        for block in blocks[:-1]:
            decoded = decode_records(block, TEXT, file="f")
            assert not decoded.malformed, (size, block)


def test_records_and_lines_are_numbered_across_escaped_line_feeds():
    data = b'"1\\\n2"|"x"\n"y"|"\\\n\\\n"\n"bad"\n"z"|"w"\n'
    decoded = decode_records(data, TEXT, file="f.txt", first_line=10, first_record=5)
    assert decoded.records == 4 and decoded.lines == 7
    assert decoded.table.to_pylist() == [
        {"a": "1\n2", "b": "x"},
        {"a": "y", "b": "\n\n"},
        {"a": "z", "b": "w"},
    ]
    [bad] = decoded.malformed
    assert (bad.file, bad.line, bad.record, bad.reason, bad.raw) == ("f.txt", 15, 7, "field_count", b'"bad"')


@pytest.mark.parametrize(
    ("spec", "text", "detail"),
    [
        ("v:smallint", '"40000"', "invalid smallint value '40000' in column v"),
        ("v:int", '"12a"', "invalid integer value '12a' in column v"),
        ("v:decimal(5,2)", '"1.234"', "invalid decimal(5,2) value '1.234' in column v"),
        ("v:boolean", '"true"', "invalid boolean value 'true' in column v"),
        ("v:date", '"2019-02-30"', "invalid date value '2019-02-30' in column v"),
        ("v:timestamp", '"2019-01-01 25:00:00"', "invalid timestamp value '2019-01-01 25:00:00' in column v"),
        ("v:timestamp", '"2019-01-01 10:00:00+00"', "invalid timestamp value '2019-01-01 10:00:00+00' in column v"),
    ],
)
def test_values_not_of_their_type_are_quarantined(spec: str, text: str, detail: str):
    columns = parse_columns_spec(f"k:int,{spec}")
    data = f'"1"|{text}\n"2"|"\\N"\n'.encode()
    decoded = decode_records(data, columns, file="f")
    assert decoded.table.to_pylist() == [{"k": 2, "v": None}]
    [bad] = decoded.malformed
    assert (bad.reason, bad.line, bad.detail, bad.raw) == ("bad_value", 1, detail, f'"1"|{text}'.encode())
    assert bad.describe() == f"f:1: record 1: bad_value: {detail}"


def test_typed_values():
    columns = parse_columns_spec("d:decimal(12,2),f:real,g:float8,t:timestamptz,b:bool,x:date")
    data = b'"363.00"|"12345.1"|"-inf"|"2019-03-10 10:00:00.5+05:30"|"f"|"2019-12-30"\n'
    [row] = decode_records(data, columns, file="f").table.to_pylist()
    assert row["d"] == Decimal("363.00")
    assert row["f"] == pytest.approx(12345.1, rel=1e-7)
    assert row["g"] == float("-inf")
    assert row["t"] == dt.datetime(2019, 3, 10, 4, 30, 0, 500000, tzinfo=dt.UTC)
    assert row["b"] is False and row["x"] == dt.date(2019, 12, 30)


def test_escaped_null_policies_only_touch_text_columns():
    columns = parse_columns_spec("s:varchar(4),n:int")
    data = b'"\\\\N"|"\\\\N"\n'
    assert decode_records(data, columns, file="f").table.to_pylist() == [{"s": None, "n": None}]
    string = decode_records(data, columns, file="f", options=DecodeOptions("string"))
    assert string.table.to_pylist() == [{"s": "\\N", "n": None}]
    error = decode_records(data, columns, file="f", options=DecodeOptions("error"))
    assert [m.reason for m in error.malformed] == ["ambiguous_null"]
    with pytest.raises(ValueError, match="escaped_null"):
        DecodeOptions("maybe")


def test_memory_mapped_blocks_end_only_at_unescaped_line_feeds(tmp_path):
    from teem_assets.unload.convert import _mapped_blocks

    data = b'"a\\\nb"|"x"\n"c\\\\"|"\\\\\\\ny"\n"e"|"f"'
    path = tmp_path / "t_0000_part_00"
    path.write_bytes(data)
    for size in range(1, len(data) + 1):
        blocks = [bytes(b) for b in _mapped_blocks(str(path), size)]
        assert b"".join(blocks) == data
        assert all(not decode_records(b, TEXT, file="f").malformed for b in blocks[:-1]), size


def test_a_nul_byte_in_text_is_quarantined_with_its_raw_bytes_and_the_rows_around_it_kept():
    data = b'"a"|"before"\n"b"|"x\x00y"\n"c"|"after"\n'
    chunk = decode_records(data, TEXT, file="f")
    assert chunk.table.to_pylist() == [{"a": "a", "b": "before"}, {"a": "c", "b": "after"}]
    [bad] = chunk.malformed
    assert (bad.line, bad.record, bad.reason, bad.detail) == (2, 2, "bad_value", "a NUL byte in column b")
    assert bad.raw == b'"b"|"x\x00y"'


def test_a_byte_order_mark_opens_a_part_without_becoming_data(tmp_path):
    from teem_assets.unload.convert import decode_part
    from teem_assets.unload.parts import find_parts

    path = tmp_path / "t_0000_part_00"
    path.write_bytes(b'\xef\xbb\xbf"1"|"a"\n"2"|"\xef\xbb\xbfb"\n')  # a BOM inside a value stays: it is data there
    [part] = find_parts(str(path)).parts
    chunks = [chunk for chunk, _ in decode_part(part, TEXT, DecodeOptions())]
    assert [row for chunk in chunks for row in chunk.table.to_pylist()] == [
        {"a": "1", "b": "a"},
        {"a": "2", "b": "\ufeffb"},
    ]
    assert not [m for chunk in chunks for m in chunk.malformed]


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("v:timestamp", "0000-12-31 23:59:59"),
        ("v:date", "0000-02-29"),
        ("v:timestamptz", "0001-01-01 00:30:00+01"),  # 0000-12-31 23:30 in UTC
    ],
)
def test_dates_before_year_one_are_quarantined_as_out_of_range(spec: str, text: str):
    columns = parse_columns_spec(f"k:int,{spec}")
    decoded = decode_records(f'"1"|"{text}"\n"2"|\\N\n'.encode(), columns, file="f")
    assert [row["k"] for row in decoded.table.to_pylist()] == [2]
    [bad] = decoded.malformed
    kind = spec.split(":")[1]
    assert (bad.reason, bad.detail) == ("out_of_range", f"{kind} value '{text}' before 0001-01-01 in column v")
