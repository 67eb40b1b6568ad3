"""The live-overlay benchmark at its smoke size: its figures are printed (their values are not checked)."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.integration


def test_overlay_bench_smoke_prints_each_kind_of_change():
    out = run_bench("live_overlay.py", timeout=300)
    assert re.search(r"^2,000 items x 8: one shared copy of the version's arrays [\d.]+ MB", out, re.M), out
    kinds = ("price change of 5 known items", r"5 new items \(content only\)", "5 new items with live vectors")
    for kind in kinds:
        assert re.search(rf"^  {kind} +rebuild cpu +[\d.]+ s +anonymous \+ *-?[\d.]+ MB +item factors shared: "
                         "(yes|no)$", out, re.M), out
    # What is measured, not how fast: a price change patches attributes and keeps the shared factors.
    assert re.search(r"price change of 5 known items .* shared: yes$", out, re.M), out
