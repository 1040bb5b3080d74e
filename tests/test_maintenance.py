"""The tables' upkeep (maintenance_job) after 15 daily batches, each committed on its own as the daily runs do,
with a share of each day's new rows created days earlier (late arrivals: each lands as a new small file in an
older created_date partition): those partitions' files are compacted, the manifests rewritten, every table
holds the same rows as before, the materializations record the shape before and after, and the next batch's
aggregates recompute only the days it touched (the compaction's `replace` commits are no change)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pytest
from dagster_helpers import definitions, materializations, replace_raw_batch, run_job

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import DIMENSIONS, FACTS, TABLES, Table
from teem_assets.data_root import DataRoot
from teem_assets.migration import migrate_batches
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.stages import run_stage
from teem_assets.stages.request import StageRequest
from teem_assets.table_state import current_snapshot_id

DAILY = 15  # batches committed one a day before the upkeep; one more after it
SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=DAILY + 1, seed=3)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
FACT_NAMES = [t.name for t in FACTS]


def _with_late_rows(root: Path, table: Table, day: dt.date) -> None:
    """Every fifth new row of the batch created one to three days before it."""
    at = table.column_names.index(table.created_at)
    rows = []
    for n, row in enumerate(batch_rows(SPEC, table.name, day)):
        if n % 5 == 0 and row[at].date() == day:
            row = (*row[:at], row[at] - dt.timedelta(days=1 + n % 3), *row[at + 1 :])
        rows.append(row)
    replace_raw_batch(root, table, day.isoformat(), rows)


def _stage(spark, root: DataRoot, stage: str, tables: list[str], batches: list[str]) -> None:
    report = run_stage(spark, StageRequest(stage, root.settings(), tables, batches), root)
    assert report.failures == []


def _rows(spark, identifier: str) -> list[tuple]:
    return sorted((tuple(row) for row in spark.table(identifier).collect()), key=repr)


def _data_files(spark, identifier: str) -> int:
    return spark.sql(f"SELECT count(*) FROM {identifier}.data_files").first()[0]


def _days_the_batch_touches(spark, root: DataRoot, day: str, before: int) -> set[dt.date]:
    """At most the days batch `day` can change: its event-day rows' days, those of the versions they replace,
    and every day of the events whose attendance it holds."""
    events = root.migrated_table(spark, "fact_event_by_day")
    batch = {t: spark.read.parquet(*root.converted_or_fail(t, day).uris) for t in FACT_NAMES}
    old = spark.sql(f"SELECT * FROM {events} VERSION AS OF {before}")
    keys = batch["fact_event_by_day"].select("event_by_day_pk")
    attended = batch["fact_attendance"].select("event_pk").distinct()
    pks = (
        batch["fact_event_by_day"].select("local_date_pk")
        .union(old.join(keys, "event_by_day_pk").select("local_date_pk"))
        .union(spark.table(events).join(attended, "event_pk").select("local_date_pk"))
    )  # fmt: skip
    dates = spark.table(root.migrated_table(spark, "dim_date")).select("date_pk", "day_date")
    found = dates.join(pks.withColumnRenamed("local_date_pk", "date_pk"), "date_pk", "left_semi").collect()
    return {row["day_date"] for row in found}


@pytest.mark.slow
def test_fifteen_daily_batches_then_maintenance(spark, tmp_path: Path, monkeypatch, postgres_url, pg_schema) -> None:
    generate_sample(str(tmp_path), SPEC, UnloadOptions(slices=2))
    for table in FACTS:
        for day in SPEC.batch_dates[3:]:
            _with_late_rows(tmp_path, table, day)
    root = DataRoot(str(tmp_path))
    dimensions = [t.name for t in DIMENSIONS]
    _stage(spark, root, "convert", dimensions, ["snapshot"])
    for _ in range(2):  # two weeks' snapshots
        _stage(spark, root, "migrate", dimensions, ["snapshot"])
    _stage(spark, root, "convert", FACT_NAMES, DAYS)

    def migrate(table: Table, days: list[str]) -> None:  # a commit a day, as the daily runs make them
        for day in days:
            files = root.converted_or_fail(table.name, day).uris
            quarantine = root.quarantine(table.name, f"migrate-{day}")
            migrate_batches(spark, table, files, root.migrated_table(spark, table.name), quarantine)

    for days in (DAYS[: DAILY - 1], DAYS[DAILY - 1 : DAILY]):  # aggregates after the last day but one, then the last
        with ThreadPoolExecutor(len(FACTS)) as tables:
            list(tables.map(migrate, FACTS, [days] * len(FACTS)))
        _stage(spark, root, "aggregate", list(AGGREGATES), [days[-1]])

    identifiers = {name: root.migrated_table(spark, name) for name in TABLES}
    identifiers |= {name: root.aggregate_table(spark, name) for name in AGGREGATES}
    rows = {name: _rows(spark, identifier) for name, identifier in identifiers.items()}
    files = {name: _data_files(spark, identifier) for name, identifier in identifiers.items()}

    monkeypatch.setenv("TEEM_MAINTENANCE_MANIFESTS", "0")  # every table's rewritten: a `replace` commit on each
    defs = definitions(monkeypatch, tmp_path, postgres_url, pg_schema)
    assert defs.get_schedule_def("weekly_maintenance_schedule").default_status == dg.DefaultScheduleStatus.STOPPED
    result = run_job(defs, "maintenance_job")
    found = materializations(result)

    for name, identifier in identifiers.items():
        assert _rows(spark, identifier) == rows[name], name  # value for value
        metadata = found[f"maintenance/{name}"]
        assert metadata["data_files_before"] == files[name]
        assert metadata["data_files_after"] == _data_files(spark, identifier)
    for name in FACT_NAMES:
        metadata = found[f"maintenance/{name}"]
        partitions = spark.sql(f"SELECT count(DISTINCT partition) FROM {identifiers[name]}.data_files").first()[0]
        assert files[name] > partitions == metadata["data_files_after"]  # one file left in each
        assert metadata["compacted_partitions"] != "none" and metadata["data_files_rewritten"] > 0
        assert metadata["manifests_before"] > 3 and metadata["manifests_after"] == 1
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(identifiers)
    for name, check in checks.items():  # a manifest left is more than 0: each warns, naming the count
        assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
        assert (
            check.metadata["over_thresholds"].value == f"- {check.metadata['manifests'].value} manifests, more than 0"
        )
        assert found[f"maintenance/{name}"]["manifests_rewritten"] > 0, name

    before = current_snapshot_id(spark, identifiers["fact_event_by_day"])
    _stage(spark, root, "migrate", FACT_NAMES, [DAYS[DAILY]])
    touched = _days_the_batch_touches(spark, root, DAYS[DAILY], before)
    report = run_stage(spark, StageRequest("aggregate", root.settings(), ["agg_hourly_space"], [DAYS[DAILY]]), root)
    [hourly] = report.materializations
    assert hourly.metadata["every_value_recomputed"]["raw_value"] is False
    recomputed = {dt.date.fromisoformat(v) for v in hourly.metadata["recomputed"]["raw_value"]}
    every_day = spark.table(identifiers["agg_hourly_space"]).select("date").distinct().count()
    assert recomputed and recomputed <= touched and len(recomputed) < every_day


def test_maintenance_before_any_table_exists_succeeds(spark, tmp_path: Path, monkeypatch, postgres_url, pg_schema):
    """A deployment's first week: the weekly upkeep finds no table yet, says so, and fails nothing."""
    defs = definitions(monkeypatch, tmp_path, postgres_url, pg_schema)
    found = materializations(run_job(defs, "maintenance_job"))
    assert set(found) == {f"maintenance/{name}" for name in [*TABLES, *AGGREGATES]}
    assert all(metadata["table"].endswith("does not exist yet") for metadata in found.values())
