"""bench/serving_load.py at its smoke size: the API and wrk on loopback, memory, two-stage vs full NDCG, profile."""

from __future__ import annotations

import re
import shutil
import socket

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make setup installs it)")
def test_serving_bench_smoke_prints_latency_memory_quality_and_profile():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_bench("serving_load.py", "--port", str(port), timeout=600)
    row = re.search(r"^full\s+2\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)  ([\d. ]+)$", out, re.MULTILINE)
    assert row and int(row.group(1)) > 0 and int(row.group(5)) == 0, out
    worker_cores = [float(c) for c in row.group(6).split()]  # each worker's share: wrk may load only one
    assert len(worker_cores) == 2 and sum(worker_cores) > 0, out
    cost = re.search(r"^full at 2 connections: CPU per request ([\d.]+) ms in the workers \+ ([\d.]+) ms elsewhere "
                     r".*; \d+ cores serve at most (\d+) req/s at that cost$", out, re.MULTILINE)
    assert cost and float(cost.group(1)) > 0 and int(cost.group(3)) > 0, out
    assert re.search(r"memory: 2 workers, RSS \d+ MB, PSS \d+ MB together; one model copy", out), out
    quality = re.search(r"NDCG@10 two-stage ([\d.]+), full scoring ([\d.]+) \(([+-][\d.]+)%, 95% interval "
                        r"([+-][\d.]+)% \.\. ([+-][\d.]+)%", out)
    assert quality, out
    low, high = float(quality.group(4)), float(quality.group(5))
    assert low <= high, out
    for stage in ("validation", "Redis: one script", "retrieval (candidates)", "ranking", "JSON", "total per request"):
        assert re.search(rf"^{re.escape(stage)}.* [\d.]+ ms$", out, re.MULTILINE), (stage, out)
