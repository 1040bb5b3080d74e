"""The two blocking checks of the exports seen failing, and what they stop: PostgreSQL changing rows behind the
loader's back (a trigger, as a DBA's or another tool's would) fails `matches_migrated`, and nothing downstream of
that table runs; a reference that disagrees with Spark fails `matches_postgres_reference`, and the export of that
aggregate does not run; a fault in an aggregate's Spark code fails it too, and no reader (pyiceberg, Spark,
PostgreSQL) sees what it rejected, until a healthy run publishes the right values; and a batch's publications
undone (`rollback_job`) leave every table as a run that never had it. (`snapshot_not_shrunk`:
test_snapshot_checks.py; the volume check holding a short date back: test_volume_range.py.)"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import psycopg2
from dagster_helpers import SMALL_SPEC, definitions, replace_raw_batch, run_job, small_sample
from pyspark.sql import functions as F
from tables import iceberg, pipeline_state, sorted_rows

from teem_assets import layout
from teem_assets.aggregates.outputs import AGG_HOURLY_SPACE
from teem_assets.aggregates.store import partition_rows
from teem_assets.assets.aggregates import writers_of
from teem_assets.catalogue import TABLES
from teem_assets.data_root import DataRoot
from teem_assets.postgres.aggregates import compare_with_reference
from teem_assets.sample.generate import batch_rows
from teem_assets.stages import aggregate as aggregate_stage

DAYS = [d.isoformat() for d in SMALL_SPEC.batch_dates]
EVENTS = TABLES["fact_event_by_day"]


def _sql(url: str, statement: str) -> list[tuple]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def _trigger(url: str, schema: str, table: str, change: str) -> None:
    """A BEFORE INSERT OR UPDATE trigger on `schema.table` that applies `change` (plpgsql on NEW) to every row."""
    _sql(
        url,
        f"""CREATE FUNCTION "{schema}".behind_the_back() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {change}; RETURN NEW; END $$;
            CREATE TRIGGER behind_the_back BEFORE INSERT OR UPDATE ON "{schema}".{table}
            FOR EACH ROW EXECUTE FUNCTION "{schema}".behind_the_back();""",
    )


def _drop_trigger(url: str, schema: str, table: str) -> None:
    _sql(url, f'DROP TRIGGER behind_the_back ON "{schema}".{table}; DROP FUNCTION "{schema}".behind_the_back()')


def _failed_checks(result) -> set[tuple[str, str]]:
    return {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_each_export_check_fails_and_stops_what_reads_its_table(
    monkeypatch, tmp_path: Path, spark, postgres_url, pg_schema
):
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assert run_job(defs, "migration_job", DAYS[0]).success
    hourly_before = _sql(postgres_url, f'SELECT * FROM "{pg_schema}".agg_hourly_space ORDER BY 1, 2, 3, 4, 5, 6')
    assert hourly_before

    # The reference reads every scheduled end a minute later than the migrated table holds it.
    _trigger(postgres_url, pg_schema, "fact_event_by_day",
             "NEW.event_by_day_local_scheduled_end_time := NEW.event_by_day_local_scheduled_end_time "
             "+ interval '1 minute'")  # fmt: skip
    result = run_job(defs, "migration_job", DAYS[1], raise_on_error=False)
    assert not result.success
    assert _failed_checks(result) == {("aggregates/agg_hourly_space", "matches_postgres_reference")}
    done = _materialized(result)
    assert {"postgres/fact_event_by_day", "aggregates/agg_hourly_space"} <= done  # checked: the load itself is right
    assert "postgres/agg_hourly_space" not in done
    assert (
        _sql(postgres_url, f'SELECT * FROM "{pg_schema}".agg_hourly_space ORDER BY 1, 2, 3, 4, 5, 6') == hourly_before
    )
    _drop_trigger(postgres_url, pg_schema, "fact_event_by_day")

    # PostgreSQL keeps a different updated-at than the loader sent: the load is not what was migrated.
    _trigger(postgres_url, pg_schema, "fact_attendance",
             "NEW.edw_attendance_updated_at := NEW.edw_attendance_updated_at + interval '1 second'")  # fmt: skip
    snapshots = {name: iceberg(root, "aggregates", name).current_snapshot().snapshot_id
                 for name in ("agg_hourly_space", "week_people_count")}  # fmt: skip
    attendance = f'SELECT * FROM "{pg_schema}".fact_attendance ORDER BY 1'
    attendance_before = _sql(postgres_url, attendance)
    result = run_job(defs, "migration_job", DAYS[2], raise_on_error=False)
    assert not result.success
    assert ("postgres/fact_attendance", "matches_migrated") in _failed_checks(result)
    done = _materialized(result)
    assert "postgres/fact_attendance" in done
    # the check ran inside the load's transaction, which rolled back: readers never saw the load
    assert _sql(postgres_url, attendance) == attendance_before
    [load] = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == "postgres/fact_attendance"
    ]
    assert load.step_materialization_data.materialization.metadata["committed"].value is False
    assert not {a for a in done if a.startswith("aggregates/")}, done
    for name, snapshot_id in snapshots.items():  # the aggregates read nothing the check had not passed
        assert iceberg(root, "aggregates", name).current_snapshot().snapshot_id == snapshot_id


def _rollback(defs: dg.Definitions, instance: dg.DagsterInstance, **config: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("rollback_job")
    run_config = {"ops": {"roll_back_tables": {"config": config}}}
    return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def _differing(state: dict, expected: dict) -> list:
    return [key for key in expected if state[key] != expected[key]]


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


def _hourly(root: Path) -> tuple[int, list[tuple]]:
    """agg_hourly_space's main as pyiceberg reads it: its snapshot and rows."""
    table = iceberg(root, "aggregates", AGG_HOURLY_SPACE.name)
    return table.current_snapshot().snapshot_id, sorted_rows(
        table.scan().to_arrow(), list(AGG_HOURLY_SPACE.column_names)
    )


def _hourly_through_spark(spark, root: Path) -> list[tuple]:
    identifier = DataRoot(str(root)).aggregate_table(spark, AGG_HOURLY_SPACE.name)
    return sorted(
        (tuple(r) for r in spark.table(identifier).select(*AGG_HOURLY_SPACE.column_names).collect()), key=repr
    )


def test_a_faulty_aggregate_is_never_published_a_healthy_run_publishes_the_right_values_and_rollback_undoes(
    monkeypatch, tmp_path: Path, spark, postgres_url, pg_schema
):
    """Then (one world, its runs shared): `rollback_job` undoes batch D1's runs, the healthy one and the
    faulty one that published its facts, leaving every table as after D0; a 7-hours-late D1 run and rolled
    back the same way; and the right unload run again gives what the healthy run gave."""
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    instance = dg.DagsterInstance.ephemeral()
    assert "never migrated" in _failure(_rollback(defs, instance, batch=DAYS[1]))
    assert run_job(defs, "migration_job", DAYS[0], instance=instance).success
    never_had_d1 = pipeline_state(root, postgres_url, pg_schema)
    exported = f'SELECT * FROM "{pg_schema}".agg_hourly_space ORDER BY 1, 2, 3, 4, 5, 6'
    main_before, rows_before = _hourly(root)
    through_spark_before, exported_before = _hourly_through_spark(spark, root), _sql(postgres_url, exported)
    assert rows_before and exported_before

    healthy = aggregate_stage.compute

    def one_more_event_an_hour(aggregate, warehouse, scope):  # a fault in the aggregate's Spark code
        rows = healthy(aggregate, warehouse, scope)
        if aggregate is not AGG_HOURLY_SPACE:
            return rows
        return rows.withColumn("sum_scheduled_events", F.col("sum_scheduled_events") + 1)

    monkeypatch.setattr(aggregate_stage, "compute", one_more_event_an_hour)
    result = run_job(defs, "migration_job", DAYS[1], instance=instance, raise_on_error=False)
    assert not result.success
    assert _failed_checks(result) == {("aggregates/agg_hourly_space", "matches_postgres_reference")}
    [failed] = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.metadata["only_in_spark"].value > 0
    branch = failed.metadata["staged_branch"].value
    assert "postgres/agg_hourly_space" not in _materialized(result)
    # what the check rejected is on the run's branch, and nowhere a reader reads
    assert _hourly(root) == (main_before, rows_before)
    assert _hourly_through_spark(spark, root) == through_spark_before
    assert _sql(postgres_url, exported) == exported_before
    table = iceberg(root, "aggregates", AGG_HOURLY_SPACE.name)
    staged = table.scan(snapshot_id=table.refs()[branch].snapshot_id).to_arrow()
    assert sorted_rows(staged, list(AGG_HOURLY_SPACE.column_names)) != rows_before

    monkeypatch.setattr(aggregate_stage, "compute", healthy)
    assert run_job(defs, "migration_job", DAYS[1], instance=instance).success
    main_after, rows_after = _hourly(root)
    assert main_after != main_before
    assert _hourly_through_spark(spark, root) == rows_after
    values = sorted({row[4] for row in rows_after})
    connection = psycopg2.connect(postgres_url)
    try:
        table = iceberg(root, "aggregates", AGG_HOURLY_SPACE.name)
        comparison = compare_with_reference(
            connection, AGG_HOURLY_SPACE, pg_schema, values, partition_rows(table, AGG_HOURLY_SPACE, values)
        )
    finally:
        connection.close()
    assert comparison.equal, comparison.first_differences
    assert sorted(_sql(postgres_url, exported), key=repr) == rows_after  # PostgreSQL holds what was published

    undisturbed = pipeline_state(root, postgres_url, pg_schema)
    unload = layout.raw_batch(str(root), EVENTS.name, DAYS[1])
    shutil.copytree(unload, tmp_path / "right")
    assert _rollback(defs, instance, batch=DAYS[1]).success
    assert _differing(pipeline_state(root, postgres_url, pg_schema), never_had_d1) == []
    replace_raw_batch(root, EVENTS, DAYS[1], _seven_hours_late(DAYS[1]))
    assert run_job(defs, "batch_job", DAYS[1], instance=instance).success
    bad = pipeline_state(root, postgres_url, pg_schema)
    assert bad[("migrated", EVENTS.name)] != undisturbed[("migrated", EVENTS.name)]
    assert bad[("postgres", AGG_HOURLY_SPACE.name)] != undisturbed[("postgres", AGG_HOURLY_SPACE.name)]
    undone = _rollback(defs, instance, batch=DAYS[1])
    assert undone.success
    assert _differing(pipeline_state(root, postgres_url, pg_schema), never_had_d1) == []
    observed = {
        e.asset_key.to_user_string(): e.metadata for e in undone.asset_observations_for_node("roll_back_tables")
    }
    assert observed[f"migrated/{EVENTS.name}"]["postgres_rows_replaced"].value > 0
    assert "no UTC offset" in _failure(_rollback(defs, instance, to="2019-09-03T08:00:00"))
    assert "no data yet" in _failure(_rollback(defs, instance, to="2000-01-01T00:00:00+00:00"))
    shutil.rmtree(unload)
    shutil.copytree(tmp_path / "right", unload)
    assert run_job(defs, "batch_job", DAYS[1], instance=instance).success
    assert _differing(pipeline_state(root, postgres_url, pg_schema), undisturbed) == []


def test_an_export_emptied_behind_the_pipelines_back_fails_the_check_without_a_retry(
    monkeypatch, tmp_path: Path, spark, postgres_url, pg_schema
):
    """The reference SQL reads PostgreSQL's dim_space; emptied there by someone else, it disagrees with Spark. No
    other run is writing, so the difference stands: no retry, nothing published, nothing exported."""
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assert run_job(defs, "migration_job", DAYS[0]).success
    main_before, rows_before = _hourly(root)
    exported = f'SELECT * FROM "{pg_schema}".agg_hourly_space ORDER BY 1, 2, 3, 4, 5, 6'
    exported_before = _sql(postgres_url, exported)
    _sql(postgres_url, f'DELETE FROM "{pg_schema}".dim_space')
    instance = dg.DagsterInstance.ephemeral()
    freshness = _created(instance, defs, "freshness_job")  # unfinished, but it writes no table: not waited for

    result = run_job(defs, "batch_job", DAYS[1], instance=instance, raise_on_error=False)
    assert not result.success
    assert ("aggregates/agg_hourly_space", "matches_postgres_reference") in _failed_checks(result)
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []
    [failed] = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] == "agg_hourly_space"]
    assert failed.metadata["spark_rows"].value > 0  # the staged rows, not an empty set against an empty set
    assert _hourly(root) == (main_before, rows_before)
    assert _sql(postgres_url, exported) == exported_before
    assert writers_of(instance, result.run_id, ["dim_space"]) == []
    assert instance.get_run_by_id(freshness).status == dg.DagsterRunStatus.NOT_STARTED


def _created(instance: dg.DagsterInstance, defs: dg.Definitions, job: str, day: str | None = None) -> str:
    """A run of `job` created and not yet started, as a launcher leaves it: Dagster records what it plans."""
    tags = {"dagster/partition": day} if day else {}
    run = instance.create_run_for_job(defs.resolve_job_def(job), tags=tags, status=dg.DagsterRunStatus.NOT_STARTED)
    return run.run_id


def test_the_runs_an_aggregate_check_waits_for_are_the_unfinished_writers_of_the_tables_that_differ(
    monkeypatch, tmp_path: Path, postgres_url, pg_schema
):
    defs = definitions(monkeypatch, tmp_path / "root", postgres_url, pg_schema)
    instance = dg.DagsterInstance.ephemeral()
    _created(instance, defs, "freshness_job")
    snapshot = _created(instance, defs, "snapshot_job")
    batch = _created(instance, defs, "batch_job", DAYS[0])
    finished = _created(instance, defs, "batch_job", DAYS[1])
    instance.report_run_canceled(instance.get_run_by_id(finished))  # ended: no longer waited for
    assert writers_of(instance, "this run", ["dim_space"]) == [snapshot]
    assert writers_of(instance, "this run", ["fact_attendance", "dim_date"]) == sorted(
        [batch, snapshot], key=[r.run_id for r in instance.get_runs()].index
    )
    assert writers_of(instance, batch, ["fact_attendance"]) == []  # never the run that asks
