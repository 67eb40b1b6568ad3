"""The live-catalogue benchmark at its smoke size: its figures are printed (their values are not checked)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.integration
FIGURE = r"p50 [\d.]+s  p95 [\d.]+s  max [\d.]+s  over \d+ samples"


def test_catalogue_bench_smoke_prints_its_figures():
    run = subprocess.run([sys.executable, "bench/catalogue.py", "--smoke"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "RECSYS_ENV": "test"})
    out = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, out
    assert re.search(r"^PATCH /v1/items -> change seen in every worker's answers: " + FIGURE, run.stdout, re.M), out
    for what in ("the viewed item's similar items", "its viewer's recommendations"):
        assert re.search(rf"^first interactions -> new item in {what}: (no sample completed|{FIGURE})", run.stdout,
                         re.M), out
