"""All 51 cases of ../shared/unload-corpus decoded by the Spark reader, rows collected from Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from corpus import Case, expected_value, load_cases, same_value

from teem_assets.redshift_types import Kind
from teem_assets.unload.decode import DecodeOptions
from teem_assets.unload.spark_reader import read_unload

CASES = load_cases()
# The error cases, written out by hand from spec/UNLOAD_FORMAT.md ("Errors": a malformed record never corrupts
# its neighbours; only an unescaped LF ends a record): the rows that survive, and the raw bytes of every
# quarantined record (without its LF).
ERROR_CASES = {
    "case_44": ([["1", "ok"], ["3", "x"]], [b'"2"|"abc']),
    "case_45": ([["1", "a"]], [b'"2"|"b"|"c"']),
    "case_46": ([["1", "a"]], [b'"2"|"abc\\']),
    "case_47": ([["1", "a"]], [b'"2"|"caf\xe9"']),
    "case_48": ([["1", "a"]], [b'"2"|"abc"x']),
    "case_49": ([], [b'"a\\tb"']),
    "case_50": ([], [b'"a"\r', b'"b"\r']),
    "case_51": ([["1", "x"]], [b'"2"|"\\\\N"']),
}


def _in_utc(row: list, case: Case) -> list:
    """PySpark hands a `timestamp with time zone` to Python as a naive wall time of the process's own zone (which
    the tests keep away from UTC): made aware, it is the instant Spark holds."""
    return [
        v.astimezone(dt.UTC) if kind is Kind.TIMESTAMPTZ and isinstance(v, dt.datetime) else v
        for v, kind in zip(row, [t.kind for _, t in case.columns])
    ]


def test_the_corpus_is_all_there():
    assert len(CASES) == 51


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_through_spark(spark, tmp_path: Path, case: Case):
    part = tmp_path / "unload" / f"{case.name}_0000_part_00"
    part.parent.mkdir()
    part.write_bytes(case.data)
    read = read_unload(
        spark,
        str(part.parent),
        case.columns,
        str(tmp_path / "out"),
        str(tmp_path / "quarantine"),
        DecodeOptions(escaped_null=case.escaped_null),
    )
    rows = [_in_utc(list(r), case) for r in read.dataframe.collect()]
    assert read.records == read.rows + read.malformed
    assert len(rows) == read.rows
    if case.spec["expect"] == "ok":
        expected = [[expected_value(v, t) for v, (_, t) in zip(row, case.columns)] for row in case.spec["rows"]]
        assert read.malformed == 0, read.malformed_sample
        assert len(rows) == len(expected)
        for got, want in zip(rows, expected):
            assert all(same_value(a, e) for a, e in zip(got, want)), (got, want)
    else:
        error = case.spec["error"]
        first = read.malformed_sample[0]
        assert (first.reason, first.line, first.record) == (error["code"], error["line"], error["record"])
        assert first.file.endswith(part.name)
        quarantined = pq.read_table(tmp_path / "quarantine" / f"{part.name}.parquet").to_pylist()
        assert quarantined[0]["reason"] == error["code"]
        good, raws = ERROR_CASES[case.name]
        assert rows == good
        assert read.malformed == len(raws) == len(quarantined)
        assert [q["raw"] for q in quarantined] == raws
