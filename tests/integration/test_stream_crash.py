"""The speed-layer job killed with SIGKILL mid-run, again and again: nothing lost, nothing applied twice."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from recsys.config import PROJECT_ROOT, load_settings
from recsys.contracts.redis_keys import REALTIME_QUERY, RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE
from recsys.kafka.topics import ensure_topics
from recsys.spark.delta import read_table
from tests.integration.conftest import events_applied

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]
USERS, RATE_PER_S, KILLS = 30, 60, 2  # two kills at random points: a restart after a restart (each costs a JVM)


def _produce_until(settings, tag: str, stop: threading.Event, produced: list[int]) -> None:
    """Events at a steady rate until told to stop: every restart has new events to apply."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True})
    n = 0
    while not stop.is_set():
        user = f"{tag}-u{n % USERS}"
        event = {"event_id": f"{tag}-{n}", "user_id": user, "item_id": f"i{n % 97}",
                 "event_type": ("view", "click", "add_to_cart")[n % 3], "ts": datetime.now(UTC).isoformat()}
        producer.produce(settings.kafka.events_topic, json.dumps(event).encode(), key=user.encode())
        producer.poll(0)
        n += 1
        time.sleep(1 / RATE_PER_S)
    assert producer.flush(30) == 0
    produced.append(n)


def _start_job(environ: dict, log_path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "recsys.spark.submit", "spark_jobs/stream.py"],
                                cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _kill(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(60)


def _applied_since(redis_client, keys: RedisKeys, since: float) -> bool:
    updated = redis_client.hget(keys.stream_progress(REALTIME_QUERY), "updated_at")
    return updated is not None and float(updated) > since


def test_sigkill_mid_run_neither_loses_nor_duplicates(spark, settings, tmp_path, redis_client):
    tag = f"crash{uuid.uuid4().hex[:6]}"
    environ = {**os.environ, "RECSYS_ENV": "test",
               "RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta"),
               "RECSYS__STORAGE__CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
               "RECSYS__KAFKA__EVENTS_TOPIC": f"test-{tag}",
               "RECSYS__REDIS__KEY_PREFIX": f"{settings.redis.key_prefix}:{tag}"}
    own = load_settings("test", environ=environ)
    ensure_topics(own)
    keys, log_path = RedisKeys(own.redis.key_prefix), tmp_path / "stream.log"
    stop_producing, produced = threading.Event(), []
    producer = threading.Thread(target=_produce_until, args=(own, tag, stop_producing, produced), daemon=True)
    producer.start()

    for _ in range(KILLS):
        started = time.time()
        proc = _start_job(environ, log_path)
        try:
            while not _applied_since(redis_client, keys, started):
                assert proc.poll() is None and time.time() - started < 240, log_path.read_text()[-3000:]
                time.sleep(0.5)
            time.sleep(random.uniform(0.0, 3.0))  # somewhere inside a batch, a commit or a Redis transaction
        finally:
            _kill(proc, signal.SIGKILL)
    stop_producing.set()
    producer.join(60)
    events = produced[0]

    proc = _start_job(environ, log_path)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            applied = sum(events_applied(own, f"{tag}-u{u}") for u in range(USERS))
            if applied >= events and read_table(spark, own, EVENTS_BRONZE).count() >= events:
                break
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(2)
    finally:
        _kill(proc, signal.SIGTERM)
    table = read_table(spark, own, EVENTS_BRONZE)
    assert (table.count(), table.select("event_id").distinct().count()) == (events, events)
    per_user = {u: events_applied(own, f"{tag}-u{u}") for u in range(USERS)}
    assert per_user == {u: len(range(u, events, USERS)) for u in range(USERS)}  # each event applied once
