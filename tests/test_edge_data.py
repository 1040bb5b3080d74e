"""Bad data at the edges of an unload, end to end through batch_job's fact tables (parquet, migrated, PostgreSQL)
in one run: a timestamp in year 0000 (Redshift holds it; Python, Spark and PostgreSQL do not), a part whose name
holds glob characters, and a part left by an earlier unload of the folder. (A folder that is not a batch date:
tests/test_sensors.py.)"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import psycopg2
import pyarrow.parquet as pq
from dagster_helpers import definitions, materializations, run_job

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=11)
DAY = SPEC.batch_dates[0].isoformat()
EVENTS = TABLES["fact_event_by_day"]
GLOB_NAME = "fact_event_by_day_[1]{a,b}*?_0001_part_00"
YEAR_ZERO = "0000-01-01 00:00:00"


def _year_zero_in_the_first_record(part: Path) -> int:
    """The first record's updated-at (its last field) set to year 0000; returns its key."""
    first, rest = part.read_bytes().split(b"\n", 1)
    fields, _ = first.rsplit(b"|", 1)
    part.write_bytes(fields + f'|"{YEAR_ZERO}"'.encode() + b"\n" + rest)
    return int(first.split(b"|")[EVENTS.column_names.index(EVENTS.primary_key[0])].strip(b'"'))


def _keys_of(part: Path) -> set[int]:
    index = EVENTS.column_names.index(EVENTS.primary_key[0])
    return {int(line.split(b"|")[index].strip(b'"')) for line in part.read_bytes().splitlines()}


def test_year_zero_glob_names_and_stale_parts(tmp_path: Path, monkeypatch, postgres_url, pg_schema) -> None:
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions(slices=2))
    folder = Path(layout.raw_batch(str(root), EVENTS.name, DAY))
    first, second = sorted(p for p in folder.iterdir() if "_part_" in p.name)
    year_zero_key = _year_zero_in_the_first_record(first)
    globbed = second.rename(folder / GLOB_NAME)
    stale = folder / "fact_event_by_day_0007_part_00"
    stale.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[1:6]))  # an earlier unload's rows
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    records = len(list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[0])))

    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assets = [f"{layer}/{EVENTS.name}" for layer in ("parquet", "migrated", "postgres")]
    result = run_job(defs, "batch_job", DAY, raise_on_error=False, assets=assets)
    assert result.success

    parquet = materializations(result)[f"parquet/{EVENTS.name}"]
    assert parquet["rows_read"] == records and parquet["rows_quarantined"] == 1
    assert parquet["quarantined_by_reason"] == {"out_of_range": 1}
    quarantine = DataRoot(str(root)).converted(EVENTS.name, DAY).quarantine
    [quarantined] = pq.read_table(quarantine).to_pylist()
    assert (quarantined["file"], quarantined["line"], quarantined["reason"]) == (str(first), 1, "out_of_range")
    detail = f"timestamp value '{YEAR_ZERO}' before 0001-01-01 in column {EVENTS.updated_at}"
    assert quarantined["detail"] == detail and YEAR_ZERO.encode() in quarantined["raw"]

    [stale_check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_stale_parts"]
    assert not stale_check.passed and stale_check.severity == dg.AssetCheckSeverity.WARN
    assert stale_check.metadata["stale_parts"].value == {DAY: [stale.name]}

    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT "{EVENTS.primary_key[0]}" FROM "{pg_schema}"."{EVENTS.name}"')
        exported = {key for (key,) in cursor.fetchall()}
    connection.close()
    expected = (_keys_of(first) | _keys_of(globbed)) - {year_zero_key}
    assert len(exported) == records - 1 and exported == expected
    assert materializations(result)[f"migrated/{EVENTS.name}"]["dagster/row_count"] == records - 1
