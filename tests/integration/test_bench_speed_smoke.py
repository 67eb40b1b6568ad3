"""The speed-layer benchmark at its smoke size: its own lake, a published random model, real Kafka and Redis,
the production realtime query."""

from __future__ import annotations

import re

import pytest

from tests.bench_smoke import run_bench

pytestmark = pytest.mark.integration


def test_speed_smoke_applies_every_produced_event_and_measures_redis():
    out = run_bench("speed_layer.py", timeout=600)
    produced = re.search(r"^produced (\d+) events of (\d+) users on 300 items; model (\S+)", out, re.MULTILINE)
    assert produced, out
    applied = re.search(r"^realtime query: (\d+) events in (\d+) batches", out, re.MULTILINE)
    assert applied and applied.group(1) == produced.group(1), out  # every produced event reached the query
    assert re.search(r"^throughput: [\d,]+ events/s over all batches", out, re.MULTILINE), out
    redis_bytes = re.search(r"^Redis: (\d+) bytes per active user \(mean over (\d+) users", out, re.MULTILINE)
    assert redis_bytes and int(redis_bytes.group(1)) > 0 and int(redis_bytes.group(2)) > 0, out
