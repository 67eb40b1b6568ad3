"""Docs that cannot drift: every configuration key is documented, every module folder is in the layout table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def config_keys(tree: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of conf/base.yaml (a mapping's own path is not a key)."""
    keys = []
    for name, value in tree.items():
        path = f"{prefix}{name}"
        keys += config_keys(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return keys


def undocumented_keys(base_yaml: str, configuration_md: str) -> list[str]:
    return [key for key in config_keys(yaml.safe_load(base_yaml)) if f"`{key}`" not in configuration_md]


def layout_section(architecture_md: str) -> str:
    """The text of the '## Folder layout' section."""
    found = re.search(r"^## Folder layout\n(.*?)(?=^## )", architecture_md, re.M | re.S)
    assert found, "docs/architecture.md has no '## Folder layout' section"
    return found.group(1)


def module_folders() -> list[str]:
    """Every folder git tracks a .py file in."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return sorted({str(Path(f).parent) for f in files if Path(f).parent != Path(".")})


def unlisted_folders(folders: list[str], section: str) -> list[str]:
    return [folder for folder in folders if f"`{folder}/" not in section]


def test_every_base_yaml_key_is_in_configuration_md():
    base = (ROOT / "conf" / "base.yaml").read_text()
    assert len(config_keys(yaml.safe_load(base))) > 100  # the walk reached the leaves
    assert undocumented_keys(base, (ROOT / "docs" / "configuration.md").read_text()) == []


def test_every_module_folder_is_in_the_architecture_layout_table():
    folders = module_folders()
    assert {"recsys/speed", "recsys/serving", "api/blueprints", "tests/unit"} <= set(folders)
    section = layout_section((ROOT / "docs" / "architecture.md").read_text())
    assert unlisted_folders(folders, section) == []


def test_the_checks_find_what_is_missing():
    assert undocumented_keys("redis:\n  url: x\n  ttl: 1\nevents:\n  weights:\n    view: 1.0\n",
                             "`redis.url` and `events.weights`") == ["redis.ttl", "events.weights.view"]
    section = layout_section("## Folder layout\n| `recsys/speed/` | … |\n## Next\n| `recsys/batch/` |\n")
    assert unlisted_folders(["recsys/speed", "recsys/batch"], section) == ["recsys/batch"]
