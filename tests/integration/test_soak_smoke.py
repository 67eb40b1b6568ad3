"""The soak benchmark at its smoke size: gunicorn and the stream job on loopback, mixed traffic, bronze audit."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_soak_smoke_has_no_errors_and_every_acknowledged_event_once_in_bronze():
    run = subprocess.run([sys.executable, "bench/soak.py", "--smoke"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=1200, env={**os.environ, "RECSYS_ENV": "test"})
    out = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, out
    assert re.search(r"^errors: 0$", run.stdout, re.MULTILINE), out
    audit = re.search(r"bronze: (\d+) acknowledged, (\d+) found exactly once", run.stdout)
    acknowledged, once = map(int, audit.groups())
    assert acknowledged > 0 and once == acknowledged, out
    assert re.search(r"worker RSS: start \[\d+", run.stdout) and "redis: used_memory" in run.stdout, out
