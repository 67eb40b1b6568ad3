"""The freshness benchmark at its smoke size: gunicorn on loopback, real Kafka and Redis, no stream job, so every
changed list is read-your-own-writes' doing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_freshness_smoke_sees_every_shoppers_events_on_the_next_reads():
    run = subprocess.run([sys.executable, "bench/freshness.py", "--smoke"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "RECSYS_ENV": "test"})
    out = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, out
    for kind in ("new", "known"):
        found = re.search(rf"{kind} shoppers: n +(\d+) +p50 +(\d+) ms +p95 +(\d+) ms", run.stdout)
        assert found and int(found.group(1)) == 3, out
    assert re.search(r"^unchanged within \S+: 0$", run.stdout, re.MULTILINE), out
