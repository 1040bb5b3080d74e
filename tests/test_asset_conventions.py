"""What the UI shows of each asset besides its data: owner, tags, kinds, table name, URI, columns, and code
versions that change with the catalogue entry or the code behind an asset, and only there. Each set of
definitions is loaded in a process of its own, from the project's files or from an edited copy of them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from teem_assets.aggregates.outputs import AGGREGATES
from teem_assets.catalogue import TABLES

ROOT = Path(__file__).resolve().parents[1]
DESCRIBE = """
import json
import teem_assets
from teem_assets.definitions import build_definitions
graph = build_definitions().resolve_asset_graph()
print(json.dumps({"package": teem_assets.__file__, "assets": {
    key.to_user_string(): {
        "code_version": graph.get(key).code_version,
        "kinds": sorted(graph.get(key).kinds),
        "owners": list(graph.get(key).owners),
        "tags": {k: v for k, v in graph.get(key).tags.items() if not k.startswith("dagster/kind/")},
        "table_name": str(graph.get(key).metadata.get("dagster/table_name", "")),
        "uri": str(graph.get(key).metadata.get("dagster/uri", "")),
        "columns": [c.name for c in graph.get(key).metadata["dagster/column_schema"].columns],
        "code": [getattr(r, "url", None) or f"{r.file_path}:{r.line_number}" for r in getattr(
            graph.get(key).metadata.get("dagster/code_references"), "code_references", [])],
    } for key in graph.get_all_asset_keys()
}}))
"""
LAYERS = ("raw", "parquet", "migrated", "postgres")


def _describe(project: Path, **env: str) -> dict[str, dict]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TEEM_", "AWS_"))}
    environment.update(env, PYTHONPATH=str(project))
    found = subprocess.run(
        [sys.executable, "-c", DESCRIBE], cwd=project, env=environment, capture_output=True, text=True, timeout=300
    )
    assert found.returncode == 0, found.stderr[-3000:]
    described = json.loads(found.stdout.splitlines()[-1])
    assert described["package"] == str(project / "teem_assets" / "__init__.py")  # the copy, not the install
    return described["assets"]


def _copy_of_project(folder: Path) -> Path:
    for package in ("teem_assets", "resources", "jobs"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new))


def test_every_asset_names_its_owner_domain_table_and_location(tmp_path: Path):
    assets = _describe(
        ROOT,
        TEEM_ROOT="s3://teem-data/prod",
        TEEM_SPARK="emr",
        TEEM_POSTGRES_URL="postgresql://loader:not-shown@db.internal:5433/analytics",
        TEEM_PG_SCHEMA="teem_export",
        TEEM_MIGRATED_DATABASE="teem_migrated",
        TEEM_CODE_URL="https://github.com/teem/teem-pipelines",
        TEEM_HOME=str(tmp_path),
    )
    expected = {f"{layer}/{t}" for layer in LAYERS for t in TABLES}
    expected |= {f"{layer}/{a}" for layer in ("aggregates", "postgres", "maintenance") for a in AGGREGATES}
    expected |= {f"maintenance/{t}" for t in TABLES}
    assert set(assets) == expected
    for key, asset in assets.items():
        assert asset["owners"] == ["team:data-engineering"], key
        assert asset["tags"]["layer"] == key.split("/")[0], key
        assert asset["tags"]["domain"] == {**TABLES, **AGGREGATES}[key.split("/")[1]].domain != "", key
        assert "not-shown" not in json.dumps(asset), key
    event = {layer: assets[f"{layer}/fact_event_by_day"] for layer in LAYERS}
    assert event["raw"]["kinds"] == ["csv", "s3"]
    assert event["raw"]["uri"] == "s3://teem-data/prod/csv/fact_event_by_day/incremental"
    assert event["raw"]["table_name"] == "teem_edw.fact_event_by_day"
    assert event["parquet"]["kinds"] == ["emr", "parquet", "s3"]
    assert event["parquet"]["uri"] == "s3://teem-data/prod/parquet/fact_event_by_day"
    assert event["migrated"]["kinds"] == ["emr", "iceberg", "s3"]
    assert event["migrated"]["table_name"] == "teem_migrated.fact_event_by_day"
    assert event["migrated"]["uri"] == "s3://teem-data/prod/warehouse/teem_migrated/fact_event_by_day"
    assert event["postgres"]["kinds"] == ["postgres"]
    assert event["postgres"]["table_name"] == "teem_export.fact_event_by_day"
    assert event["postgres"]["uri"] == "postgresql://db.internal:5433/analytics"
    # no database set: the root's own (two roots in one Glue account never share a table)
    assert assets["aggregates/agg_hourly_space"]["table_name"] == "teem_data_prod_aggregates.agg_hourly_space"
    assert assets["postgres/week_people_count"]["table_name"] == "teem_export.week_people_count"
    for layer in LAYERS:
        assert event[layer]["columns"] == TABLES["fact_event_by_day"].column_names
    assert assets["aggregates/agg_hourly_space"]["columns"] == AGGREGATES["agg_hourly_space"].column_names

    for key, asset in assets.items():  # the function that computes it, in the repository (raw: not computed)
        if key.startswith("raw/"):
            assert asset["code"] == [], key
            continue
        [link] = asset["code"]
        found = re.fullmatch(r"https://github\.com/teem/teem-pipelines/tree/main/(teem_assets/assets/\w+\.py)#L(\d+)",
                             link)  # fmt: skip
        assert found, (key, link)
        line = (ROOT / found[1]).read_text().splitlines()[int(found[2]) - 1]
        assert line.lstrip().startswith(("def ", "@dg.multi_asset")), (key, line)

    local = _describe(ROOT, TEEM_ROOT=str(tmp_path / "root"), TEEM_HOME=str(tmp_path))
    [here] = local["migrated/dim_space"]["code"]
    assert here.startswith(f"{ROOT}/teem_assets/assets/migrated.py:")
    assert local["migrated/dim_space"]["kinds"] == ["file", "iceberg", "spark"]
    assert local["migrated/dim_space"]["uri"] == f"file://{tmp_path}/root/warehouse/migrated/dim_space"


def test_code_versions_change_with_a_catalogue_column_or_a_layers_code_and_nowhere_else(tmp_path: Path):
    project = _copy_of_project(tmp_path / "project")
    env = {"TEEM_ROOT": str(tmp_path / "root"), "TEEM_HOME": str(tmp_path)}
    before = {key: asset["code_version"] for key, asset in _describe(project, **env).items()}
    assert all(before.values()) and len(set(before.values())) == len(before)
    installed = {key: asset["code_version"] for key, asset in _describe(ROOT, **env).items()}
    assert installed == before  # a version depends on the files' contents, not on where they are

    catalogue = project / "teem_assets" / "catalogue.py"
    _edit(catalogue, '("attendance_role", "varchar(32)")', '("attendance_role", "varchar(64)")')
    after_column = {key: asset["code_version"] for key, asset in _describe(project, **env).items()}
    changed = {key for key in before if after_column[key] != before[key]}
    assert changed == {f"{layer}/fact_attendance" for layer in (*LAYERS, "maintenance")}

    copy_module = project / "teem_assets" / "postgres" / "copy.py"
    copy_module.write_text(copy_module.read_text() + "\n# a change to how rows are copied into PostgreSQL\n")
    after_code = {key: asset["code_version"] for key, asset in _describe(project, **env).items()}
    changed = {key for key in after_column if after_code[key] != after_column[key]}
    assert changed == {f"postgres/{t}" for t in TABLES} | {f"postgres/{a}" for a in AGGREGATES}


def test_the_postgres_location_names_the_server_never_the_credentials(monkeypatch, tmp_path: Path):
    from teem_assets.assets.conventions import Placement
    from teem_assets.settings import load

    def postgres_uri() -> str:
        return Placement.of(load()).postgres_uri

    monkeypatch.delenv("TEEM_POSTGRES_URL", raising=False)
    monkeypatch.setenv("TEEM_PG_HOST", "db.internal")
    monkeypatch.setenv("TEEM_PG_PORT", "6432")
    monkeypatch.setenv("TEEM_PG_DATABASE", "analytics")
    monkeypatch.setenv("TEEM_PG_PASSWORD", "not-shown")
    assert postgres_uri() == "postgresql://db.internal:6432/analytics"
    monkeypatch.setenv("TEEM_POSTGRES_URL", "postgresql://loader:not-shown@/analytics?host=/run/postgresql")
    assert postgres_uri() == "postgresql:///run/postgresql:5432/analytics"
    monkeypatch.delenv("TEEM_POSTGRES_URL")
    monkeypatch.delenv("TEEM_PG_HOST")
    monkeypatch.setenv("TEEM_HOME", str(tmp_path))
    assert postgres_uri() == f"file://{tmp_path}/postgres"
