"""Unreadable input beyond the record classes of the corpus, through the convert stage with both fact tables:
a corrupt (not truncated) gzip part, bz2 and zstd parts, a UTF-8 BOM, a NUL byte, an unload of zero parts, a
manifest listing a missing file, a malformed manifest. Each either converts with every record accounted for
(rows + quarantined), or stops its own table's batch naming the file and the reason; the other table's batch
converts whatever happens."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from dagster_helpers import definitions, materializations, run_job

from teem_assets import layout
from teem_assets.data_root import DataRoot
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.stages import convert
from teem_assets.stages.request import StageRequest

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=7)
DAY = SPEC.batch_dates[0].isoformat()
EVENTS, ATTENDANCE = "fact_event_by_day", "fact_attendance"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unreadable-sample")
    generate_sample(str(root), SPEC, UnloadOptions(slices=2))
    return root


def records(table: str) -> int:
    return len(list(batch_rows(SPEC, table, SPEC.batch_dates[0])))


def _folder(root: Path) -> Path:
    return Path(layout.raw_batch(str(root), EVENTS, DAY))


def _parts(root: Path) -> list[Path]:
    return sorted(p for p in _folder(root).iterdir() if "_part_" in p.name)


def corrupt_gzip(root: Path) -> None:
    part = _parts(root)[0]
    data = bytearray(gzip.compress(part.read_bytes()))
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    Path(f"{part}.gz").write_bytes(bytes(data))
    part.unlink()


def compressed(suffix: str, compress: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        for part in _parts(root):
            Path(f"{part}{suffix}").write_bytes(compress(part.read_bytes()))
            part.unlink()

    return change


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


def bom(root: Path) -> None:
    part = _parts(root)[0]
    part.write_bytes(b"\xef\xbb\xbf" + part.read_bytes())


def nul(root: Path) -> None:
    part = _parts(root)[0]
    first, rest = part.read_bytes().split(b"\n", 1)
    assert b"edw_load_" in first
    part.write_bytes(first.replace(b"edw_load_", b"edw\x00load_", 1) + b"\n" + rest)


def no_parts(root: Path) -> None:
    for part in _parts(root):
        part.unlink()


def manifest_with_missing_file(root: Path) -> None:
    entries = [
        f'{{"url": "s3://bucket/{p.name}", "meta": {{"content_length": {p.stat().st_size}}}}}' for p in _parts(root)
    ]
    entries.append('{"url": "s3://bucket/fact_event_by_day_0099_part_00", "meta": {"content_length": 10}}')
    (_folder(root) / "fact_event_by_day_manifest").write_text('{"entries": [' + ", ".join(entries) + "]}")


def malformed_manifest(root: Path) -> None:
    (_folder(root) / "fact_event_by_day_manifest").write_text('{"entries": [{"url": ')


# case -> (how the unload is changed, rows and quarantined expected or None, what the failure says)
CONVERTS = {
    "bz2 parts": (compressed(".bz2", bz2.compress), 0),
    "zstd parts": (compressed(".zst", zstd), 0),
    "a BOM opening a part": (bom, 0),
    "a NUL byte in a text value": (nul, 1),
}
STOPS = {
    "a corrupt gzip part": (corrupt_gzip, "_part_00.gz: cannot read the file"),
    "a manifest listing a missing file": (manifest_with_missing_file, "fact_event_by_day_0099_part_00"),
    "a malformed manifest": (malformed_manifest, "fact_event_by_day_manifest: not a Redshift manifest"),
}


def _convert(spark, sample: Path, tmp_path: Path, change: Callable[[Path], None]):
    root = tmp_path / "root"
    shutil.copytree(sample / "csv", root / "csv")
    change(root)
    data = DataRoot(str(root))
    report = convert.run(spark, data, StageRequest("convert", data.settings(), [EVENTS, ATTENDANCE], [DAY]))
    return data, report, {m.asset_key: m.metadata for m in report.materializations}


def _assert_attendance_converted(data: DataRoot, found: dict) -> None:
    metadata = found[f"parquet/{ATTENDANCE}"]
    assert metadata["rows_read"]["raw_value"] == metadata["dagster/row_count"]["raw_value"] == records(ATTENDANCE)
    assert data.converted(ATTENDANCE, DAY).rows == records(ATTENDANCE)


@pytest.mark.parametrize("case", list(CONVERTS))
def test_input_that_converts_accounts_for_every_record(spark, sample: Path, tmp_path: Path, case: str) -> None:
    change, quarantined = CONVERTS[case]
    data, report, found = _convert(spark, sample, tmp_path, change)
    assert report.failures == []
    events = found[f"parquet/{EVENTS}"]
    assert events["rows_read"]["raw_value"] == records(EVENTS)
    assert events["rows_quarantined"]["raw_value"] == quarantined
    assert events["rows_written"]["raw_value"] == records(EVENTS) - quarantined
    assert data.converted(EVENTS, DAY).rows == records(EVENTS) - quarantined
    _assert_attendance_converted(data, found)


def test_an_unload_of_zero_parts_converts_to_an_empty_batch(spark, sample: Path, tmp_path: Path) -> None:
    data, report, found = _convert(spark, sample, tmp_path, no_parts)
    assert report.failures == []
    assert found[f"parquet/{EVENTS}"]["rows_read"]["raw_value"] == 0
    assert data.converted(EVENTS, DAY).rows == 0
    _assert_attendance_converted(data, found)


@pytest.mark.parametrize("case", list(STOPS))
def test_input_that_cannot_be_read_stops_its_own_table_only(spark, sample: Path, tmp_path: Path, case: str) -> None:
    change, reason = STOPS[case]
    data, report, found = _convert(spark, sample, tmp_path, change)
    [failure] = report.failures
    assert failure.startswith(f"parquet/{EVENTS} {DAY}: ") and reason in failure and str(tmp_path) in failure
    assert f"parquet/{EVENTS}" not in found and data.converted(EVENTS, DAY) is None
    assert [c.asset_key for c in report.checks] == [f"parquet/{ATTENDANCE}"] * len(report.checks)
    _assert_attendance_converted(data, found)


@pytest.mark.parametrize("where", ["in-process", "local[1]"])  # local[1]: spark-submitted, its report through Pipes
def test_a_run_records_the_readable_table_and_fails_without_a_retry(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark, sample: Path, where: str
) -> None:
    root = tmp_path / "root"
    shutil.copytree(sample / "csv", root / "csv")
    corrupt_gzip(root)
    monkeypatch.setenv("TEEM_SPARK", where)
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    result = run_job(defs, "batch_job", DAY, raise_on_error=False)
    assert not result.success
    assert f"parquet/{ATTENDANCE}" in materializations(result) and f"parquet/{EVENTS}" not in materializations(result)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "parquet_batches"
    message = str(failure.event_specific_data.error)
    assert "not retried (fix the input" in message and "_part_00.gz: cannot read the file" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
