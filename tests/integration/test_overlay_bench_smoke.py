"""The live-overlay benchmark at its smoke size: its figures are printed (their values are not checked)."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.integration


def test_overlay_bench_smoke_prints_each_kind_of_change():
    out = run_bench("live_overlay.py", timeout=300)
    assert re.search(r"^2,000 items x 8 \(1,600 with factors, every one with a content profile\): one shared copy of "
                     r"the version's arrays [\d.]+ MB", out, re.M), out
    kinds = ("price change of 5 known items", r"5 new items \(content only\)", "5 new items with live vectors",
             "live vectors of 5 batch new items")
    for kind in kinds:
        assert re.search(rf"^  {kind} +rebuild cpu +[\d.]+ s +anonymous \+ *-?[\d.]+ MB +item factors shared: "
                         "(yes|no)$", out, re.M), out
    # What is measured, not how fast: every kind of change keeps the machine's shared factors.
    assert len(re.findall(r"shared: yes$", out, re.M)) == len(kinds), out
