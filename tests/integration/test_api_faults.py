"""Fault tests against the real server (api/server.py, its request threads): Kafka stopped while shoppers post events.

The broker is an unused loopback port (never the shared one): what a stopped Kafka looks like to the API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from recsys.config import PROJECT_ROOT
from tests.integration import test_api_endpoints as endpoints
from tests.integration.test_api_endpoints import RECS

lake, model = endpoints.lake, endpoints.model  # the shared fixtures

pytestmark = pytest.mark.integration

POSTERS = 8  # concurrent clients posting events, twice the worker's threads
READS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(settings, tmp_path: Path, **overrides: str) -> tuple[subprocess.Popen, str]:
    """The API as `make serve` starts it (api/server.py), one worker, on this test's lake and Redis namespace."""
    port = free_port()
    env = {**os.environ, "RECSYS_ENV": "test", "RECSYS__SERVING__PORT": str(port), "RECSYS__SERVING__WORKERS": "1",
           "RECSYS__SERVING__ACCESS_LOG": "false",
           "RECSYS__STORAGE__DELTA_ROOT": settings.storage.delta_root,
           "RECSYS__REDIS__KEY_PREFIX": settings.redis.key_prefix,
           "RECSYS__KAFKA__EVENTS_TOPIC": settings.kafka.events_topic,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), **overrides}
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "api.server"],
                            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
        try:
            if requests.get(f"{base}/v1/users/u1/recommendations", timeout=30).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise AssertionError("the API did not start")


@pytest.fixture
def api_without_kafka(lake, model, tmp_path):
    proc, base = start_api(lake, tmp_path, RECSYS__KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    yield base
    proc.terminate()
    proc.wait(30)


def test_kafka_stopped_reads_keep_serving_quickly_and_ingest_gets_503(lake, api_without_kafka):
    base = api_without_kafka
    assert requests.get(f"{base}/readyz", timeout=10).status_code == 200  # the serving role needs no broker
    ingest_ready = requests.get(f"{base}/readyz/ingest", timeout=10)
    assert ingest_ready.status_code == 503 and ingest_ready.json()["checks"]["kafka"]["ok"] is False

    stop, answers = threading.Event(), []

    def post_events(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                r = session.post(f"{base}/v1/events", json={"user_id": f"p{n}", "item_id": "i1", "event_type": "view"},
                                 timeout=30)
                answers.append((r.status_code, r.headers.get("Retry-After"), r.json()["error"]))

    posters = [threading.Thread(target=post_events, args=(n,)) for n in range(POSTERS)]
    for poster in posters:
        poster.start()
    try:
        time.sleep(lake.kafka.produce_timeout_s / 2)  # the posters fill the worker
        took = []
        with requests.Session() as session:
            for n in range(READS):
                started = time.monotonic()
                r = session.get(f"{base}{RECS.format(f'u{n}')}", timeout=30)
                took.append(time.monotonic() - started)
                assert r.status_code == 200 and r.json()["items"]
    finally:
        stop.set()
        for poster in posters:
            poster.join(60)
    took.sort()
    p99 = took[int(0.99 * (len(took) - 1))]
    assert p99 < lake.kafka.produce_timeout_s / 2, f"reads waited behind ingest: p99 {p99:.3f}s"
    assert answers and {status for status, _, _ in answers} == {503}
    assert all(retry for _, retry, _ in answers)
    assert {error for _, _, error in answers} <= {"ingest_unavailable", "ingest_busy"}


def test_a_stopped_server_lets_its_worker_send_its_queued_records_first(lake, model, tmp_path):
    proc, base = start_api(lake, tmp_path)
    try:
        assert requests.get(f"{base}{RECS.format('u1')}", timeout=30).json()["items"]
    finally:
        proc.terminate()
        proc.wait(60)
    assert proc.returncode == 0
    assert "stopped: served-list records flushed" in (tmp_path / "api.log").read_text()
