"""The live-catalogue benchmark at its smoke size: its figures are printed (their values are not checked)."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.integration
FIGURE = r"p50 [\d.]+s  p95 [\d.]+s  max [\d.]+s  over \d+ samples"


def test_catalogue_bench_smoke_prints_its_figures():
    out = run_bench("catalogue.py", timeout=600)
    assert re.search(r"^PATCH /v1/items -> change seen in every worker's answers: " + FIGURE, out, re.M), out
    for what in ("the viewed item's similar items", "its viewer's recommendations"):
        assert re.search(rf"^first interactions -> new item in {what}: (no sample completed|{FIGURE})", out,
                         re.M), out
