"""A corrupted part: good rows come out, bad records are reported and quarantined, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from conftest import SAMPLE_SPEC

from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import batch_rows
from teem_assets.sample.unload_writer import write_unload
from teem_assets.unload.spark_reader import read_unload

TABLE = TABLES["fact_attendance"]
COLUMNS = TABLE.typed_columns
BAD_RECORDS = [
    (
        "unterminated_quote",
        b'"901"|"2"|"90101"|"organizer"|"accepted"|"h"|"h"|"p"|"f"|"j"|"2019-09-01 10:00:00"|"2019\n',
    ),
    (
        "invalid_utf8",
        b'"902"|"2"|"90201"|"caf\xe9"|"accepted"|"h"|"h"|"p"|"f"|"j"|"2019-09-01 10:00:00"|"2019-09-01 10:00:00"\n',
    ),
    ("field_count", b'"903"|"2"|"90301"|"organizer"\n'),
    (
        "bad_value",
        b'"9o4"|"2"|"90401"|"organizer"|"accepted"|"h"|"h"|"p"|"f"|"j"|"2019-09-01 10:00:00"|"2019-09-01 10:00:00"\n',
    ),
    (
        "invalid_escape",
        b'"905"|"2"|"90501"|"org\\tanizer"|"accepted"|"h"|"h"|"p"|"f"|"j"|"2019-09-01 10:00:00"|"2019-09-01"\n',
    ),
]


def test_corrupted_part_keeps_good_rows_and_reports_bad_ones(spark, tmp_path: Path):
    day = SAMPLE_SPEC.batch_dates[3]
    expected = list(batch_rows(SAMPLE_SPEC, TABLE.name, day))
    folder = tmp_path / "unload"
    written = write_unload(expected, [t for _, t in COLUMNS], str(folder), "fact_attendance_", slices=2)
    victim = Path(written.files[0])
    lines = victim.read_bytes().split(b"\n")[:-1]
    # Insert the bad records between good ones, noting each one's physical line (1-based) in the new file.
    corrupted: list[bytes] = []
    where: dict[str, int] = {}
    for index, line in enumerate(lines):
        corrupted.append(line + b"\n")
        if index % 40 == 5 and len(where) < len(BAD_RECORDS):
            reason, raw = BAD_RECORDS[len(where)]
            where[reason] = sum(chunk.count(b"\n") for chunk in corrupted) + 1
            corrupted.append(raw)
    assert len(where) == len(BAD_RECORDS)
    victim.write_bytes(b"".join(corrupted))

    read = read_unload(spark, str(folder), COLUMNS, str(tmp_path / "out"), str(tmp_path / "quarantine"))

    assert read.records == len(expected) + len(BAD_RECORDS)
    assert read.rows == len(expected)
    assert read.malformed == len(BAD_RECORDS)
    assert read.records == read.rows + read.malformed
    got = sorted(tuple(r) for r in read.dataframe.collect())
    assert got == sorted(expected)
    reported = {m.reason: m for m in read.malformed_sample}
    assert set(reported) == set(where)
    for reason, line in where.items():
        assert reported[reason].line == line, reason
        assert reported[reason].file == str(victim)
    quarantine = pq.read_table(tmp_path / "quarantine" / f"{victim.name}.parquet").to_pylist()
    assert {q["reason"]: q["raw"] + b"\n" for q in quarantine} == dict(BAD_RECORDS)
    assert "9o4" in reported["bad_value"].detail and "event_pk" in reported["bad_value"].detail
