"""`rollback_job` (`teem rollback`): a bad batch undone leaves every table, Iceberg and PostgreSQL, as a run that
never had it left them; the batch corrected and run again gives what the undisturbed run gave."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
from dagster_helpers import SMALL_SPEC, definitions, replace_raw_batch, run_job, small_sample
from tables import pipeline_state

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import batch_rows

DAYS = [d.isoformat() for d in SMALL_SPEC.batch_dates]
EVENTS = TABLES["fact_event_by_day"]


def _rollback(defs: dg.Definitions, instance: dg.DagsterInstance, **config: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("rollback_job")
    run_config = {"ops": {"roll_back_tables": {"config": config}}}
    return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def _seven_hours_late(day: str) -> list[list]:
    """The day's events as the predecessor's time-zone bug wrote them: every time 7 hours late, and updated
    a day later, so an upsert of the right rows alone could never replace them."""
    column = {name: i for i, name in enumerate(EVENTS.column_names)}
    shifted = [c for c in column if c.endswith(("_time", "_at")) and c != EVENTS.updated_at]
    rows = []
    for row in map(list, batch_rows(SMALL_SPEC, EVENTS.name, dt.date.fromisoformat(day))):
        for name in shifted:
            if isinstance(row[column[name]], dt.datetime):
                row[column[name]] += dt.timedelta(hours=7)
        row[column[EVENTS.updated_at]] += dt.timedelta(days=1)
        rows.append(row)
    return rows


def test_a_bad_batch_rolled_back_is_as_if_it_never_ran_and_its_correction_converges(
    monkeypatch, tmp_path: Path, postgres_url, pg_schema
):
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    instance = dg.DagsterInstance.ephemeral()
    assert "never migrated" in _failure(_rollback(defs, instance, batch=DAYS[1]))
    run_job(defs, "migration_job", DAYS[0], instance=instance)
    never_had_it = pipeline_state(root, postgres_url, pg_schema)
    run_job(defs, "batch_job", DAYS[1], instance=instance)
    undisturbed = pipeline_state(root, postgres_url, pg_schema)

    unload = layout.raw_batch(str(root), EVENTS.name, DAYS[1])
    shutil.copytree(unload, tmp_path / "right")
    assert _rollback(defs, instance, batch=DAYS[1]).success
    assert pipeline_state(root, postgres_url, pg_schema) == never_had_it
    replace_raw_batch(root, EVENTS, DAYS[1], _seven_hours_late(DAYS[1]))
    run_job(defs, "batch_job", DAYS[1], instance=instance)
    bad = pipeline_state(root, postgres_url, pg_schema)
    assert bad[("migrated", EVENTS.name)] != undisturbed[("migrated", EVENTS.name)]
    assert bad[("postgres", "agg_hourly_space")] != undisturbed[("postgres", "agg_hourly_space")]

    undone = _rollback(defs, instance, batch=DAYS[1])
    assert undone.success
    state = pipeline_state(root, postgres_url, pg_schema)
    assert [key for key in state if state[key] != never_had_it[key]] == []
    observed = {
        e.asset_key.to_user_string(): e.metadata for e in undone.asset_observations_for_node("roll_back_tables")
    }
    assert observed[f"migrated/{EVENTS.name}"]["postgres_rows_replaced"].value > 0
    assert "no UTC offset" in _failure(_rollback(defs, instance, to="2019-09-03T08:00:00"))
    assert "no data yet" in _failure(_rollback(defs, instance, to="2000-01-01T00:00:00+00:00"))

    shutil.rmtree(unload)
    shutil.copytree(tmp_path / "right", unload)
    run_job(defs, "batch_job", DAYS[1], instance=instance)
    state = pipeline_state(root, postgres_url, pg_schema)
    assert [key for key in state if state[key] != undisturbed[key]] == []
