"""All 51 cases of ../shared/unload-corpus decoded by the Spark reader, rows collected from Spark."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from corpus import Case, expected_value, load_cases, same_value

from teem_assets.unload.decode import DecodeOptions
from teem_assets.unload.spark_reader import read_unload

CASES = load_cases()


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
    rows = [list(r) for r in read.dataframe.collect()]
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
        assert quarantined[0]["raw"] in case.data
