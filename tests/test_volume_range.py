"""The volume check on two months of meeting data, weekends included, as a user runs it: one range run. Every
ordinary date passes; a date whose unload was cut to 60% stops the run at Parquet, held_back_sensor requests
the other dates as runs of their own, and the partitions of every layer past Parquet say what happened: the cut
date failed, every other date materialized. The cut date goes on once its complete unload is run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster_helpers import definitions, replace_raw_batch, run_job
from oracle import newest_by_key
from tables import iceberg_rows

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.assets.keys import aggregate_key, migrated_key, postgres_key
from teem_assets.assets.parquet import VOLUME
from teem_assets.catalogue import DIMENSIONS, FACTS, TABLES, Table
from teem_assets.sample.generate import UnloadOptions, batch_rows, generate_sample
from teem_assets.sample.spec import SampleSpec

SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=60, seed=99)
DAYS = [d.isoformat() for d in SPEC.batch_dates]
CUT = dt.date(2019, 10, 19)  # a Saturday of the seventh week
ATTENDANCE = TABLES["fact_attendance"]
START, END = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG


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

    instance = dg.DagsterInstance.ephemeral()

    result = run_job(defs, "migration_job", DAYS[0], DAYS[-1], instance=instance, raise_on_error=False)

    assert not result.success  # stopped after Parquet: no layer past it materialized a date of the range
    volume = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert volume["fact_event_by_day"].passed
    assert volume["fact_event_by_day"].metadata["short_batches"].value == "none"
    assert not volume["fact_attendance"].passed
    assert volume["fact_attendance"].metadata["short_batches"].value == CUT.isoformat()
    past = {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key.path[0] != "parquet"}
    assert past == {key(t) for t in DIMENSIONS for key in (migrated_key, postgres_key)}  # the weekly snapshot's
    # the writers refuse the short date themselves, whoever starts them
    refused = run_job(defs, "admitted_job", DAYS[0], DAYS[-1], instance=instance, raise_on_error=False)
    [failure] = refused.get_step_failure_events()
    assert failure.step_key == "migrated_batches" and not refused.get_asset_materialization_events()
    assert f"short (volume check): {CUT}" in failure.step_failure_data.user_failure_data.description
    requests = _held_back_sensor(defs, instance, result)
    before, after = CUT - dt.timedelta(days=1), CUT + dt.timedelta(days=1)
    assert [(r.tags[START], r.tags[END]) for r in requests] == [(DAYS[0], before.isoformat()),
                                                                (after.isoformat(), DAYS[-1])]  # fmt: skip
    for request in requests:
        run_job(defs, "admitted_job", request.tags[START], request.tags[END], instance=instance)

    others = [d for d in SPEC.batch_dates if d != CUT]
    for table in FACTS:
        assert _migrated(root, table) == _newest(table, others), table.name  # the cut date of neither table
    failed = {d: dg.AssetPartitionStatus.FAILED if d == CUT.isoformat() else dg.AssetPartitionStatus.MATERIALIZED
              for d in DAYS}  # fmt: skip
    for key in _past_parquet():
        assert _status(defs, instance, key) == failed, key.to_user_string()

    replace_raw_batch(root, ATTENDANCE, CUT.isoformat(), complete)  # the complete unload arrives
    again = run_job(defs, "batch_job", CUT.isoformat(), instance=instance)
    assert again.success
    for table in FACTS:
        assert _migrated(root, table) == _newest(table, SPEC.batch_dates), table.name
    for key in _past_parquet():
        assert set(_status(defs, instance, key).values()) == {dg.AssetPartitionStatus.MATERIALIZED}, key
    # complete, the cut date passes the volume check of both tables, as every other date did in the first run
    rechecked = {e.asset_key.path[-1]: e for e in again.get_asset_check_evaluations() if e.check_name == VOLUME}
    assert {name: (e.passed, e.metadata["short_batches"].value) for name, e in rechecked.items()} == {
        t.name: (True, "none") for t in FACTS
    }


def _held_back_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult
) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("held_back_sensor")
    context = dg.build_run_status_sensor_context(
        "held_back_sensor", result.get_run_failure_event(), instance, instance.get_run_by_id(result.run_id)
    )
    return list(sensor(context))


def _past_parquet() -> list[dg.AssetKey]:
    tables = [key(t) for t in FACTS for key in (migrated_key, postgres_key)]
    return tables + [key(a) for a in AGGREGATES.values() for key in (aggregate_key, postgres_key)]


def _status(defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, object]:
    """Each batch date's partition status as the UI and GraphQL read it (the instance's status cache)."""
    partitions = defs.resolve_assets_def(key).partitions_def
    assert partitions is not None
    return dict(instance.get_status_by_partition(key, DAYS, partitions) or {})
