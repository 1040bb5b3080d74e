"""The volume check on two months of meeting data, weekends included, as a user runs it: one range run. Every
ordinary date passes; a date whose unload was cut to 60% is held back while every other date migrates, and it
goes on once its complete unload is run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job
from oracle import newest_by_key
from tables import iceberg_rows

from teem_assets.assets.parquet import VOLUME
from teem_assets.catalogue import FACTS, TABLES, Table
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=60, seed=99)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
CUT = dt.date(2019, 10, 19)  # a Saturday of the seventh week
ATTENDANCE = TABLES["fact_attendance"]


def _newest(table: Table, days: list[dt.date]) -> set[tuple]:
    """(key, updated-at) of every key's newest row over the batches of `days`, from the generator alone."""
    updated = table.column_names.index(table.updated_at)
    return {(key, row[updated]) for key, row in newest_by_key(table.name, SPEC, days).items()}


def _migrated(root: Path, table: Table) -> set[tuple]:
    rows = iceberg_rows(root, "migrated", table.name).select([table.primary_key[0], table.updated_at])
    return {(row[table.primary_key[0]], row[table.updated_at]) for row in rows.to_pylist()}


@pytest.mark.slow
def test_sixty_days_with_weekends_pass_and_a_short_date_waits_alone(
    tmp_path: Path, monkeypatch, postgres_url, pg_schema, spark
) -> None:
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions())
    assert {d.weekday() for d in SPEC.batch_dates} == set(range(7))
    complete = list(batch_rows(SPEC, ATTENDANCE.name, CUT))
    replace_raw_batch(root, ATTENDANCE, CUT.isoformat(), complete[: int(0.6 * len(complete))])
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)

    result = run_job(defs, "migration_job", DAYS[0], DAYS[-1], raise_on_error=False)

    assert result.success  # the other 59 dates went through every layer
    volume = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert volume["fact_event_by_day"].passed
    assert volume["fact_event_by_day"].metadata["short_batches"].value == "none"
    assert not volume["fact_attendance"].passed and volume["fact_attendance"].severity.value == "WARN"
    assert volume["fact_attendance"].metadata["short_batches"].value == CUT.isoformat()
    found = materializations(result)
    for table in FACTS:
        for layer in ("migrated", "postgres"):
            assert found[f"{layer}/{table.name}"]["held_back_batches"] == CUT.isoformat()
        others = [d for d in SPEC.batch_dates if d != CUT]
        assert _migrated(root, table) == _newest(table, others), table.name  # the cut date of neither table

    replace_raw_batch(root, ATTENDANCE, CUT.isoformat(), complete)  # the complete unload arrives
    again = run_job(defs, "batch_job", CUT.isoformat())
    assert again.success
    for table in FACTS:
        assert _migrated(root, table) == _newest(table, SPEC.batch_dates), table.name
        assert "held_back_batches" not in materializations(again)[f"migrated/{table.name}"]
    # complete, the cut date passes the volume check of both tables, as every other date did in the first run
    rechecked = {e.asset_key.path[-1]: e for e in again.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert {name: (e.passed, e.metadata["short_batches"].value) for name, e in rechecked.items()} == {
        t.name: (True, "none") for t in FACTS
    }
