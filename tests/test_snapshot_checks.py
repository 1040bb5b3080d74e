"""Never replace with less by accident: a dimension snapshot that is empty, or holds half the current table,
stops at its blocking check; the migrated table and PostgreSQL keep every row they had. Materialized alone, the
migrated table's writer refuses it too, until a run accepts the shrink explicitly."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_helpers import SMALL_SPEC, definitions, run_job, small_sample
from tables import iceberg_rows, sorted_rows

from teem_assets import layout
from teem_assets.catalogue import TABLES
from teem_assets.sample.generate import snapshot_rows
from teem_assets.sample.unload_writer import write_unload
from teem_assets.verdicts.snapshots import shrink_verdict

SPACES = TABLES["dim_space"]


def _postgres_rows(url: str, schema: str) -> list[tuple]:
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}".dim_space')
        rows = sorted(cursor.fetchall(), key=repr)
    connection.close()
    return rows


@pytest.mark.parametrize("kept", [0, 0.5], ids=["empty", "half"])
def test_a_shrunken_snapshot_stops_before_migrated_and_postgres(
    monkeypatch, tmp_path: Path, spark, postgres_url, pg_schema, kept
):
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    assert run_job(defs, "snapshot_job").success
    migrated_before = sorted_rows(iceberg_rows(root, "migrated", SPACES.name))
    postgres_before = _postgres_rows(postgres_url, pg_schema)
    assert len(migrated_before) == len(postgres_before) == len(list(snapshot_rows(SMALL_SPEC, SPACES.name))) > 0

    rows = list(snapshot_rows(SMALL_SPEC, SPACES.name))
    folder = layout.raw_snapshot(str(root), SPACES.name)
    shutil.rmtree(folder)
    write_unload(rows[: int(len(rows) * kept)], [c.type for c in SPACES.columns], folder, f"{SPACES.name}_")

    result = run_job(defs, "snapshot_job", raise_on_error=False)
    assert not result.success
    [check] = [
        e for e in result.get_asset_check_evaluations()
        if e.check_name == "snapshot_not_shrunk" and e.asset_key.path[-1] == SPACES.name
    ]  # fmt: skip
    assert not check.passed
    assert check.metadata["snapshot_rows"].value == int(len(rows) * kept)
    assert check.metadata["current_rows"].value == len(rows)
    migrated = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "migrated/dim_space" not in migrated and "postgres/dim_space" not in migrated
    assert sorted_rows(iceberg_rows(root, "migrated", SPACES.name)) == migrated_before
    assert _postgres_rows(postgres_url, pg_schema) == postgres_before

    # migrated/dim_space alone (the UI allows it), on the shrunken snapshot parquet/ now holds: the writer refuses
    alone = _migrated_spaces(defs)
    refused = alone.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=defs.resources, raise_on_error=False
    )
    assert not refused.success
    [failure] = refused.get_step_failure_events()
    error = failure.step_failure_data.error
    assert "dim_space: the snapshot was not migrated, the table is unchanged" in error.message + str(error.cause)
    assert sorted_rows(iceberg_rows(root, "migrated", SPACES.name)) == migrated_before
    # a genuine shrink, accepted for one run: replaced, and the acceptance recorded
    config = {"ops": {"migrated_snapshots": {"config": {"accept_shrink": ["dim_space"]}}}}
    accepted = alone.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=defs.resources, run_config=config
    )
    [event] = accepted.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    assert metadata["shrink_accepted"].value.startswith("accepted for this run")
    assert metadata["rows_before"].value == len(rows)
    assert len(iceberg_rows(root, "migrated", SPACES.name)) == int(len(rows) * kept)


def _migrated_spaces(defs: dg.Definitions) -> dg.JobDefinition:
    selection = dg.AssetSelection.assets(dg.AssetKey(["migrated", SPACES.name]))
    return dg.define_asset_job("migrated_spaces", selection=selection).resolve(asset_graph=defs.resolve_asset_graph())


def test_the_shrink_threshold_and_the_first_snapshot() -> None:
    assert not shrink_verdict(0, None, 0.9).passed  # empty, even with nothing to compare with
    assert shrink_verdict(5, None, 0.9).passed  # the first snapshot
    assert shrink_verdict(90, 100, 0.9).passed and not shrink_verdict(89, 100, 0.9).passed
    assert shrink_verdict(150, 100, 0.9).passed


def test_an_export_whose_source_is_missing_fails_naming_it(monkeypatch, tmp_path: Path, postgres_url, pg_schema):
    """A fresh root: nothing migrated yet. The dimension exports alone must fail, not replace PostgreSQL's
    tables with empty ones."""
    root = small_sample(tmp_path / "root")
    defs = definitions(monkeypatch, root, postgres_url, pg_schema)
    selection = dg.AssetSelection.from_string("key:postgres/dim_*")
    job = dg.define_asset_job("exports", selection=selection).resolve(asset_graph=defs.resolve_asset_graph())
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=defs.resources, raise_on_error=False
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    text = error.message + "".join(c.message for c in [error.cause] if c)
    assert "migrated.dim_company does not exist" in text and "materialize migrated/dim_company" in text
    connection = psycopg2.connect(postgres_url)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{pg_schema}".dim_company',))
        assert cursor.fetchone()[0] is None  # nothing was created, let alone emptied
    connection.close()
