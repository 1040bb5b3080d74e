"""The Parquet layer's batch pointers on S3 (moto's server on loopback): a reader sees one conversion whole,
the new one only once its pointer is written, and older attempts are removed."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from teem_assets import converted
from teem_assets.data_root import DataRoot
from teem_assets.unload.location import s3_filesystem


def _attempt(folder: str, rows: int, begun: dt.datetime | None = None) -> converted.ConvertedBatch:
    attempt = converted.new_attempt(begun)
    pq.write_table(pa.table({"x": list(range(rows))}), f"{folder}/{attempt}/part-0.parquet".removeprefix("s3://"),
                   filesystem=s3_filesystem())  # fmt: skip
    return converted.ConvertedBatch(folder, attempt, converted.files_of(folder, attempt), rows, 0, "", [1, 2])


def _keys(s3, prefix: str) -> set[str]:
    found = s3.list_objects_v2(Bucket="teem", Prefix=prefix).get("Contents", [])
    return {item["Key"][len(prefix) :] for item in found} - {""}  # "" : a folder marker pyarrow writes


def test_a_batch_pointer_on_s3_swaps_whole_conversions(s3):
    storage = DataRoot("s3://teem/root")
    folder = storage.parquet("fact_attendance", "2019-09-01")
    assert folder == "s3://teem/root/parquet/fact_attendance/batch_date=2019-09-01"
    assert storage.converted("fact_attendance", "2019-09-01") is None

    long_ago = dt.datetime.now(dt.UTC) - converted.ATTEMPT_RETENTION - dt.timedelta(minutes=1)
    first = _attempt(folder, 3, long_ago)
    assert storage.converted("fact_attendance", "2019-09-01") is None  # written, not yet committed
    converted.commit(first)
    second = _attempt(folder, 5)
    assert storage.converted("fact_attendance", "2019-09-01") == first  # readers still see the first whole
    converted.commit(second)
    found = storage.converted("fact_attendance", "2019-09-01")
    assert found == second and found.rows == 5 and found.companies == [1, 2]
    assert pq.read_table(found.uris[0].removeprefix("s3://"), filesystem=s3_filesystem()).num_rows == 5

    beside = _attempt(folder, 7)  # another run's conversion of the same batch, not yet committed
    third = _attempt(folder, 7)
    converted.commit(third)
    attempts = {key.split("/")[0] for key in _keys(s3, "root/parquet/fact_attendance/batch_date=2019-09-01/")}
    # the current attempt, the one before it (a reader may still be on it) and one begun lately that a running
    # conversion may own; the first, begun long ago, is gone
    assert attempts == {third.attempt, second.attempt, beside.attempt, converted.POINTER}
    converted.commit(beside)  # the other run's commit does not lose the attempts it was writing
    assert storage.converted("fact_attendance", "2019-09-01") == beside
    later = dt.datetime.now(dt.UTC) + converted.ATTEMPT_RETENTION + dt.timedelta(minutes=1)
    assert converted.remove_stale_attempts(folder, {beside.attempt, third.attempt}, later) == [second.attempt]
    assert storage.converted_dates("fact_attendance") == ["2019-09-01"]


def test_a_pointer_naming_no_files_for_rows_is_refused(s3):
    folder = DataRoot("s3://teem/root").parquet("fact_attendance", "2019-09-02")
    kept = _attempt(folder, 4)
    converted.commit(kept)
    emptied = converted.ConvertedBatch(folder, converted.new_attempt(), [], 4, 0, "", [])
    with pytest.raises(converted.EmptyPointerError, match=r"2019-09-02/attempt-.*no Parquet file for 4 rows"):
        converted.commit(emptied)
    assert converted.read(folder) == kept
    converted.commit(converted.ConvertedBatch(folder, converted.new_attempt(), [], 0, 0, "", []))  # an empty batch
    assert converted.read(folder).rows == 0
