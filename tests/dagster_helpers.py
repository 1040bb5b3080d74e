"""Building and running the code location against a data root of a test's own."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from teem_assets import layout
from teem_assets.catalogue import Table
from teem_assets.sample.generate import UnloadOptions, generate_sample
from teem_assets.sample.spec import SampleSpec
from teem_assets.sample.unload_writer import write_unload

SMALL_SPEC = SampleSpec(start=dt.date(2019, 9, 1), days=3, seed=7)


def small_sample(root: Path) -> Path:
    generate_sample(str(root), SMALL_SPEC, UnloadOptions())
    return root


def replace_raw_batch(root: Path, table: Table, day: str, rows: list) -> None:
    """Put an unload of `rows` where batch `day` of `table` was."""
    folder = layout.raw_batch(str(root), table.name, day)
    shutil.rmtree(folder)
    write_unload(rows, [c.type for c in table.columns], folder, f"{table.name}_")


def copy_raw(source: Path, target: Path) -> Path:
    shutil.copytree(source / "csv", target / "csv")
    return target


def definitions(monkeypatch, root: Path, postgres_url: str, schema: str) -> dg.Definitions:
    monkeypatch.setenv("TEEM_ROOT", str(root))
    monkeypatch.setenv("TEEM_HOME", str(root / ".teem"))
    monkeypatch.setenv("TEEM_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("TEEM_PG_SCHEMA", schema)
    from teem_assets.definitions import build_definitions

    return build_definitions()


def run_job(
    defs: dg.Definitions,
    name: str,
    first: str | None = None,
    last: str | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    assets: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run a job in process: for the batch dates first..last, or unpartitioned without them; only the `assets`
    (keys as `layer/table`) of its selection when given."""
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last or first} if first else {}
    selection = [dg.AssetKey.from_user_string(key) for key in assets] if assets else None
    result = defs.resolve_job_def(name).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), tags=tags, asset_selection=selection, raise_on_error=False
    )
    if raise_on_error and not result.success:  # say which checks failed and why, not only that one did
        failed = [
            (e.asset_key.to_user_string(), e.check_name, {k: v.value for k, v in e.metadata.items()})
            for e in result.get_asset_check_evaluations()
            if not e.passed
        ]
        raise AssertionError(f"{name} {first}..{last} failed: {result.get_run_failure_event().message}; {failed}")
    return result


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        found[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
    return found
