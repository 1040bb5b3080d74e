"""Personal data, marked in the catalogue: every calendar's email and every meeting's URL in a one-day sample
carry a marker, and so does a record of the calendar snapshot that cannot be read. After migration_job, no
event of the run (materializations with their previews, checks, log messages: what the UI shows, what the
stages' reports carried) holds the marker; the quarantine keeps the unreadable record raw, until the upkeep
after its retention removes it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from dagster._serdes import serialize_value
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample, snapshot_rows
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import write_unload
from teem_assets.stages.metadata import MASK

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=1, seed=13)
DAY = SPEC.batch_dates[0].isoformat()
MARK = "zq7-personal"
CALENDARS, EVENTS = TABLES["dim_calendar"], TABLES["fact_event_by_day"]
LAYERS = ("parquet", "migrated", "postgres")


def _marked(rows: list[tuple], column: int, value: str) -> list[tuple]:
    return [(*row[:column], value.format(n), *row[column + 1 :]) for n, row in enumerate(rows)]


def _with_personal_data(root: Path) -> None:
    email = CALENDARS.column_names.index("calendar_email")
    calendars = _marked(list(snapshot_rows(SPEC, CALENDARS.name)), email, MARK + ".{}@example.com")
    folder = layout.raw_snapshot(str(root), CALENDARS.name)
    shutil.rmtree(folder)
    write_unload(calendars, [c.type for c in CALENDARS.columns], folder, f"{CALENDARS.name}_")
    part = sorted(Path(folder).glob("*_part_*"))[0]
    part.write_bytes(part.read_bytes() + f'"1"|"{MARK}.unreadable@example.com"\n'.encode())  # two fields
    url = EVENTS.column_names.index("event_by_day_platform_url")
    events = _marked(list(batch_rows(SPEC, EVENTS.name, SPEC.batch_dates[0])), url, "https://meet/" + MARK + "/{}")
    replace_raw_batch(root, EVENTS, DAY, events)


def test_personal_data_stays_out_of_what_the_ui_shows(tmp_path: Path, monkeypatch, postgres_url, pg_schema) -> None:
    root = tmp_path / "root"
    generate_sample(str(root), SPEC, UnloadOptions(slices=2))
    _with_personal_data(root)
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    instance = dg.DagsterInstance.ephemeral()
    keys = [f"{layer}/{t.name}" for layer in LAYERS for t in (CALENDARS, EVENTS)]
    result = run_job(defs, "migration_job", DAY, instance=instance, assets=keys)

    found = materializations(result)
    for key in ("parquet/dim_calendar", "migrated/dim_calendar", "parquet/fact_event_by_day"):
        assert MASK in found[key]["preview"], key  # the masked columns are shown, their values are not
    events = instance.all_logs(result.run_id)
    assert len(events) > 50 and [e for e in events if MARK in serialize_value(e)] == []

    quarantine = Path(DataRoot(str(root)).converted_or_fail(CALENDARS.name, "snapshot").quarantine)
    [kept] = [p for p in quarantine.rglob("*.parquet")]
    assert MARK.encode() in pq.read_table(kept).column("raw")[0].as_py()  # raw, for whoever fixes the input
    upkeep = materializations(run_job(defs, "maintenance_job", assets=[f"maintenance/{CALENDARS.name}"]))
    assert kept.exists() and upkeep[f"maintenance/{CALENDARS.name}"]["quarantine_files_removed"] == 0
    month_ago = time.time() - 31 * 86400  # past TEEM_QUARANTINE_RETENTION_DAYS (30)
    os.utime(kept, (month_ago, month_ago))
    upkeep = materializations(run_job(defs, "maintenance_job", assets=[f"maintenance/{CALENDARS.name}"]))
    assert not kept.exists() and upkeep[f"maintenance/{CALENDARS.name}"]["quarantine_files_removed"] == 1
