"""Writes a sample in the storage layout of DESIGN §2: weekly dimension snapshots, daily fact batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from teem_assets.catalogue import TABLES, Table
from teem_assets.layout import raw_batch, raw_snapshot
from teem_assets.sample.dates import dim_date_rows
from teem_assets.sample.events import fact_attendance_batch, fact_event_by_day_batch
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import DEFAULT_MAX_FILE_SIZE, write_unload
from teem_assets.sample.world import dim_calendar_rows, dim_company_rows, dim_space_rows

Rows = Iterator[tuple[object, ...]]

SNAPSHOT_ROWS: dict[str, Callable[[SampleSpec], Rows]] = {
    "dim_company": dim_company_rows,
    "dim_space": dim_space_rows,
    "dim_calendar": dim_calendar_rows,
    "dim_date": dim_date_rows,
}
BATCH_ROWS: dict[str, Callable[[SampleSpec, dt.date], Rows]] = {
    "fact_event_by_day": fact_event_by_day_batch,
    "fact_attendance": fact_attendance_batch,
}


def snapshot_rows(spec: SampleSpec, table: str) -> Rows:
    """The rows of a dimension's snapshot, in catalogue column order."""
    return SNAPSHOT_ROWS[table](spec)


def batch_rows(spec: SampleSpec, table: str, day: dt.date) -> Rows:
    """The rows of a fact table's batch of `day`: created or updated that day."""
    return BATCH_ROWS[table](spec, day)


@dataclass(frozen=True)
class UnloadOptions:
    slices: int = 2
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    gzip: bool = False
    manifest: bool = False


@dataclass(frozen=True)
class WrittenTable:
    table: str
    batch: str  # "snapshot" or the batch date
    folder: str
    files: int
    records: int


def _write(table: Table, rows: Rows, folder: str, options: UnloadOptions) -> tuple[int, int]:
    written = write_unload(
        rows,
        [c.type for c in table.columns],
        folder,
        f"{table.name}_",
        slices=options.slices,
        max_file_size=options.max_file_size,
        compress=options.gzip,
        manifest=options.manifest,
    )
    return len(written.files), written.records


def generate_sample(root: str, spec: SampleSpec, options: UnloadOptions = UnloadOptions()) -> list[WrittenTable]:
    """Write every dimension's snapshot and every fact table's daily batches under `root`."""
    written = []
    for name in SNAPSHOT_ROWS:
        folder = raw_snapshot(root, name)
        files, records = _write(TABLES[name], snapshot_rows(spec, name), folder, options)
        written.append(WrittenTable(name, "snapshot", folder, files, records))
    for name in BATCH_ROWS:
        for day in spec.batch_dates:
            folder = raw_batch(root, name, day)
            files, records = _write(TABLES[name], batch_rows(spec, name, day), folder, options)
            written.append(WrittenTable(name, day.isoformat(), folder, files, records))
    return written
