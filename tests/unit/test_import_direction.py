"""Imports run one way between the layers (docs/architecture.md, folder layout).

An AST walk over every module, function-level imports included: a rule names the importing folder and the
packages it must not import. Production code is everything but tests/, bench/ and recsys/demo/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("recsys", "api", "spark_jobs", "dags")
NOT_PRODUCTION = ("recsys/demo",)

# (folder whose modules are checked, module prefixes they must not import)
RULES = [
    ("recsys/contracts", ("recsys.config", "recsys.batch", "recsys.speed", "recsys.serving", "recsys.stores",
                          "recsys.services", "recsys.ingest", "recsys.spark", "recsys.kafka")),
    ("recsys/als", ("recsys.batch", "recsys.speed", "recsys.serving", "recsys.stores", "recsys.services")),
    ("recsys/stores", ("recsys.speed", "recsys.serving", "recsys.services", "recsys.batch")),
    ("recsys/serving", ("recsys.batch", "recsys.speed", "recsys.services", "recsys.reports")),
    ("recsys/services", ("recsys.batch", "recsys.speed")),
    ("recsys/reports", ("recsys.batch", "recsys.speed", "recsys.serving")),
]
DEMO_AND_BENCH = ("recsys.demo", "bench")


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` names in the file, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(root: Path, folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if _matches(module, forbidden):
                found.append(f"{path.relative_to(root)} imports {module}")
    return found


def production_files(root: Path) -> list[Path]:
    files = []
    for top in PRODUCTION:
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if not any(relative.startswith(skip + "/") for skip in NOT_PRODUCTION):
                files.append(path)
    return files


@pytest.mark.unit
@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[folder for folder, _ in RULES])
def test_layer_imports_run_one_way(folder, forbidden):
    assert (ROOT / folder).is_dir()
    assert violations(ROOT, folder, forbidden) == []


@pytest.mark.unit
def test_production_code_does_not_import_the_demo_or_benches():
    files = production_files(ROOT)
    assert len(files) > 50  # the walk found the code
    found = [f"{path.relative_to(ROOT)} imports {module}" for path in files
             for module in sorted(imported_modules(path)) if _matches(module, DEMO_AND_BENCH)]
    assert found == []


@pytest.mark.unit
def test_the_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "recsys" / "stores" / "late.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from recsys.speed.adjustments import update_user\n    return update_user\n")
    assert violations(tmp_path, "recsys/stores", ("recsys.speed",)) == [
        "recsys/stores/late.py imports recsys.speed.adjustments",
        "recsys/stores/late.py imports recsys.speed.adjustments.update_user"]
