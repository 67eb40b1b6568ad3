"""The soak benchmark at its smoke size: the API and the stream job on loopback, mixed traffic, bronze audit."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.e2e


def test_soak_smoke_has_no_errors_and_every_acknowledged_event_once_in_bronze():
    out = run_bench("soak.py", timeout=1200)
    assert re.search(r"^errors: 0$", out, re.MULTILINE), out
    audit = re.search(r"bronze: (\d+) acknowledged, (\d+) found exactly once", out)
    acknowledged, once = map(int, audit.groups())
    assert acknowledged > 0 and once == acknowledged, out
    assert re.search(r"worker RSS: start \[\d+", out) and "redis: used_memory" in out, out
