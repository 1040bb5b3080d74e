"""The catalogue's rules, evaluated while the unloads convert, in one run of a day: a malformed email and a
duplicate key in the calendar snapshot warn (the check names each rule, its rows and examples, the email masked)
and the calendar migrates; two event rows stamped after their batch break a blocking rule, so the day's facts
stop at Parquet (one step converts them all, as a short batch stops them); and the migrate stage refuses that
events batch whoever runs it, while it migrates the attendance, which breaks none."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job

from teem_assets import layout
from teem_assets.catalogue import PERSONAL_MASK, TABLES
from teem_assets.data_root import DataRoot
from teem_assets.iceberg import table_exists
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample, snapshot_rows
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import write_unload
from teem_assets.stages import run_stage
from teem_assets.stages.request import StageRequest

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=17)
DAY = SPEC.batch_dates[0].isoformat()
CALENDARS, EVENTS, ATTENDANCE = TABLES["dim_calendar"], TABLES["fact_event_by_day"], TABLES["fact_attendance"]
FUTURE = dt.datetime(2030, 1, 1, 9, 0)


def _calendars_breaking_two_rules(root: Path) -> tuple[int, int]:
    """One email without a domain, one calendar twice; returns their keys."""
    rows = list(snapshot_rows(SPEC, CALENDARS.name))
    email, key = CALENDARS.column_names.index("calendar_email"), CALENDARS.column_names.index("calendar_pk")
    rows[3] = (*rows[3][:email], "someone-at-nowhere", *rows[3][email + 1 :])
    rows.append(rows[5])
    folder = layout.raw_snapshot(str(root), CALENDARS.name)
    shutil.rmtree(folder)
    write_unload(rows, [c.type for c in CALENDARS.columns], folder, f"{CALENDARS.name}_")
    return rows[3][key], rows[5][key]


def _events_stamped_after_their_batch(root: Path) -> list[int]:
    rows = list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[0]))
    stamp, key = EVENTS.column_names.index(EVENTS.updated_at), EVENTS.column_names.index(EVENTS.primary_key[0])
    for n in (2, 7):
        rows[n] = (*rows[n][:stamp], FUTURE, *rows[n][stamp + 1 :])
    replace_raw_batch(root, EVENTS, DAY, rows)
    return [rows[2][key], rows[7][key]]


def test_rules_warn_or_block_and_the_writer_refuses_what_blocks(
    spark, tmp_path: Path, monkeypatch, postgres_url, pg_schema
) -> None:
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions(slices=2))
    bad_email, twice = _calendars_breaking_two_rules(root)
    future = _events_stamped_after_their_batch(root)
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assets = [f"{layer}/{t.name}" for layer in ("parquet", "migrated") for t in (CALENDARS, EVENTS, ATTENDANCE)]
    result = run_job(defs, "migration_job", DAY, raise_on_error=False, assets=assets)

    evaluations = result.get_asset_check_evaluations()
    checks = {e.asset_key.path[-1]: e for e in evaluations if e.check_name == "catalogue_rules"}
    calendars = checks[CALENDARS.name]
    assert (calendars.passed, calendars.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert calendars.metadata["rules_broken"].value == {
        "calendar_email_pattern": {"rows": 1, "blocks": False, "examples": [f"snapshot: calendar_pk={bad_email}: "
                                                                             f"{PERSONAL_MASK}"]},
        "calendar_pk_unique": {"rows": 1, "blocks": False, "examples": [f"snapshot: calendar_pk={twice}: 2 rows"]},
    }  # fmt: skip
    events = checks[EVENTS.name]
    assert (events.passed, events.severity) == (False, dg.AssetCheckSeverity.ERROR)
    rule = "edw_event_by_day_updated_at_not_after_batch"
    assert events.metadata["blocking_rules_broken"].value == rule
    assert events.metadata["rules_broken"].value == {
        rule: {"rows": 2, "blocks": True, "examples": [f"{DAY}: event_by_day_pk={k}: {FUTURE!r}" for k in future]}
    }
    assert checks[ATTENDANCE.name].passed

    found = materializations(result)
    assert "migrated/dim_calendar" in found and "migrated/fact_event_by_day" not in found  # stopped at Parquet
    data = DataRoot(str(root))
    report = run_stage(spark, StageRequest("migrate", data.settings(), [EVENTS.name, ATTENDANCE.name], [DAY]), data)
    [refused] = report.failures
    assert refused.startswith(f"{EVENTS.name}: not migrated") and f"({DAY}: {rule})" in refused
    assert [m.asset_key for m in report.materializations] == [f"migrated/{ATTENDANCE.name}"]
    assert not table_exists(spark, data.migrated_table(spark, EVENTS.name))
