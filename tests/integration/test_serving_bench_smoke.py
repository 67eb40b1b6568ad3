"""bench/serving_load.py at its smoke size: gunicorn and wrk on loopback, memory, two-stage vs full NDCG, profile."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make setup installs it)")
def test_serving_bench_smoke_prints_latency_memory_quality_and_profile():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = subprocess.run([sys.executable, "bench/serving_load.py", "--smoke", "--port", str(port)], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=600, env={**os.environ, "RECSYS_ENV": "test"})
    out = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, out
    row = re.search(r"^full\s+2\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", run.stdout, re.MULTILINE)
    assert row and int(row.group(1)) > 0 and int(row.group(5)) == 0, out
    assert re.search(r"memory: 2 workers, RSS \d+ MB, PSS \d+ MB together; one model copy", run.stdout), out
    quality = re.search(r"NDCG@10 two-stage ([\d.]+), full scoring ([\d.]+)", run.stdout)
    assert quality, out
    for stage in ("validation", "Redis: one script", "retrieval (candidates)", "ranking", "JSON", "total per request"):
        assert re.search(rf"^{re.escape(stage)}.* [\d.]+ ms$", run.stdout, re.MULTILINE), (stage, out)
