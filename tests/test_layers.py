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
    """The modules `path` imports, as absolute names: `from teem_assets import x` is `teem_assets.x` when x is a
    module of the project, and a relative import is resolved against the importing module's package."""
    found: set[str] = set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                as_path = ROOT.joinpath(*candidate.split("."))
                if as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists():
                    found.add(candidate)
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


def test_imports_are_read_as_what_they_are(tmp_path: Path) -> None:
    here = ROOT / "teem_assets" / "assets" / "probe_for_the_layer_test.py"
    here.write_text("from teem_assets import definitions\nfrom ..checks import freshness\nfrom . import keys\n")
    try:
        found = imports(here)
    finally:
        here.unlink()
    assert {"teem_assets.definitions", "teem_assets.checks.freshness", "teem_assets.assets.keys"} <= found


def test_only_the_settings_module_reads_the_environment() -> None:
    """Settings are read in one place, checked once (teem_assets/settings.py); everything else gets values."""
    readers = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                text = ast.unparse(node) if isinstance(node, ast.Attribute | ast.Call) else ""
                if (
                    text in ("os.environ", "os.getenv", "os.putenv")
                    or text.startswith(("os.environ.", "os.getenv(", "environ.get("))
                    or (isinstance(node, ast.Call) and text.endswith(".get_value()") and "EnvVar" in text)
                ):
                    readers.append(f"{module_name(path)}:{node.lineno}: {text[:60]}")
    assert sorted({r for r in readers if not r.startswith("teem_assets.settings:")}) == []


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
