"""The freshness benchmark at its smoke size: the API on loopback, real Kafka and Redis, no stream job, so every
changed list is read-your-own-writes' doing."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.integration


def test_freshness_smoke_sees_every_shoppers_events_on_the_next_reads():
    out = run_bench("freshness.py", timeout=300)
    for kind in ("new", "known"):
        found = re.search(rf"{kind} shoppers: n +(\d+) +p50 +(\d+) ms +p95 +(\d+) ms", out)
        assert found and int(found.group(1)) == 3, out
    assert re.search(r"^unchanged within \S+: 0$", out, re.MULTILINE), out
