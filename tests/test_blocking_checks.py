"""The two blocking checks of the exports seen failing, and what they stop: PostgreSQL changing rows behind the
loader's back (a trigger, as a DBA's or another tool's would) fails `matches_migrated`, and nothing downstream of
that table runs; a reference that disagrees with Spark fails `matches_postgres_reference`, and the export of that
aggregate does not run. (`snapshot_not_shrunk`: test_snapshot_checks.py; the volume check holding a short date
back: test_volume_range.py.)"""

from __future__ import annotations

from pathlib import Path

import psycopg2
from dagster_helpers import SMALL_SPEC, definitions, run_job, small_sample
from tables import iceberg

DAYS = [d.isoformat() for d in SMALL_SPEC.batch_dates]


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
    result = run_job(defs, "migration_job", DAYS[2], raise_on_error=False)
    assert not result.success
    assert ("postgres/fact_attendance", "matches_migrated") in _failed_checks(result)
    done = _materialized(result)
    assert "postgres/fact_attendance" in done
    assert not {a for a in done if a.startswith("aggregates/")}, done
    for name, snapshot_id in snapshots.items():  # the aggregates read nothing the check had not passed
        assert iceberg(root, "aggregates", name).current_snapshot().snapshot_id == snapshot_id
