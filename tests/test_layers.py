"""DESIGN §12's one-way imports, read from the source: definitions (assets, checks, jobs, definitions.py and
the command line) -> resources -> logic (the rest of teem_assets); the logic imports no `dagster`, and only the
stages' driver imports `dagster_pipes`, which is what lets a stage run on a cluster unchanged."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("teem_assets", "resources", "jobs")
DEFINITIONS = (
    "teem_assets.definitions",
    "teem_assets.assets",
    "teem_assets.checks",
    "teem_assets.partitions",
    "jobs",
    # the command line: programs over the definitions and resources
    "teem_assets.cli",
    "teem_assets.runner",
    "teem_assets.demo",
    "teem_assets.terminal",
    "teem_assets.show_table",
)
LAYERS = {"definitions": 2, "resources": 1, "logic": 0}
PIPES_DRIVERS = {"teem_assets.stages.entry"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module.startswith("resources"):
        return "resources"
    if any(module == prefix or module.startswith(prefix + ".") for prefix in DEFINITIONS):
        return "definitions"
    return "logic"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def project_modules() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def test_the_classification_sees_every_layer():
    modules = project_modules()
    assert {layer_of(m) for m in modules} == set(LAYERS)
    assert layer_of("teem_assets.assets.parquet") == "definitions"
    assert layer_of("teem_assets.stages.convert") == "logic"
    assert layer_of("resources.spark") == "resources"
    assert layer_of("teem_assets.definitions_extra") == "logic"  # a prefix of a name is not the module


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in project_modules().items()
        for target in targets
        if target.split(".")[0] in PACKAGES and LAYERS[layer_of(target)] > LAYERS[layer_of(module)]
    ]
    assert upward == []


def test_the_logic_imports_no_dagster_and_only_the_driver_dagster_pipes():
    found = {
        module: sorted(
            t for t in targets if t.split(".")[0] in ("dagster", "dagster_aws", "dagster_pyspark", "dagster_pipes")
        )
        for module, targets in project_modules().items()
        if layer_of(module) == "logic"
    }
    offending = {
        module: names
        for module, names in found.items()
        if names and not (module in PIPES_DRIVERS and names == ["dagster_pipes"])
    }
    assert offending == {}
    assert found["teem_assets.stages.entry"] == ["dagster_pipes"]
