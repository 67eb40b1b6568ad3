"""Issue 18, ingest items 1-3 on the real broker and Redis: a request waits only for its own events, a batch is
checked whole before anything is sent, and an unreachable dependency fails fast."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import time
import uuid

import pytest
import redis

from api.services import SERVICES_EXTENSION
from recsys.config import PROJECT_ROOT
from recsys.contracts.events import MAX_CONTEXT_ENTRIES, MAX_CONTEXT_VALUE_LENGTH, Event
from recsys.ingest.producer import IngestUnavailableError, KafkaEventSink, encode_batch
from tests.integration import test_api_endpoints as endpoints
from tests.integration.test_api_endpoints import RECS, client, consume, with_

lake, model, private_redis = endpoints.lake, endpoints.model, endpoints.private_redis  # the shared fixtures

pytestmark = pytest.mark.integration


def _event(user: str, **extra) -> dict:
    return {"user_id": user, "item_id": "i1", "event_type": "view", **extra}


# --- 1: a request waits only for its own delivery reports ----------------------------------------------

def test_a_request_is_not_held_by_another_requests_undelivered_event(settings, topics):
    """Another request's event the broker cannot take yet (here: a topic that does not exist, so it waits out
    its message timeout) used to make every request flush() the whole producer and answer 503."""
    sink = KafkaEventSink(settings.kafka)
    batch = encode_batch([Event(user_id=f"own-{uuid.uuid4().hex[:6]}", item_id="i1", event_type="view")],
                         settings.events.max_event_bytes)
    assert sink.send(batch) == 1  # connected
    sink._producer.produce(f"missing-{uuid.uuid4().hex[:8]}", value=b"{}")  # the other request's event
    started = time.monotonic()
    assert sink.send(batch) == 1
    assert time.monotonic() - started < settings.kafka.produce_timeout_s / 2


# --- 2: the whole batch is checked and serialised before anything is produced ----------------------------

def test_an_oversized_event_rejects_its_whole_batch_and_sends_nothing(lake, model):
    api = client(lake)
    user = f"big-{uuid.uuid4().hex[:8]}"
    wide = {f"k{n}": "x" * MAX_CONTEXT_VALUE_LENGTH for n in range(MAX_CONTEXT_ENTRIES)}  # valid, but too big
    assert len(json.dumps(wide)) > lake.events.max_event_bytes
    response = api.post("/v1/events", json=[_event(user, event_id=f"{user}-0"), _event(user, context=wide)])
    assert response.status_code == 413 and response.json["error"] == "event_too_large"
    assert response.json["detail"][0]["index"] == 1
    sent = api.post("/v1/events", json=[_event(user, event_id=f"{user}-1")])  # a later, valid batch
    assert sent.status_code == 202
    assert [e["event_id"] for e in consume(lake, lake.kafka.events_topic, user, want=2, timeout_s=8)] == [f"{user}-1"]


@pytest.mark.parametrize("context", [
    {f"k{n}": "v" for n in range(MAX_CONTEXT_ENTRIES + 1)},
    {"k": "v" * (MAX_CONTEXT_VALUE_LENGTH + 1)},
    {"k" * 200: "v"},
])
def test_a_context_over_its_caps_is_refused(api_client, context):
    response = api_client.post("/v1/events", json=_event("u1", context=context))
    assert response.status_code == 400 and response.json["error"] == "invalid_event"
    assert response.json["detail"][0]["problem"][0]["field"].startswith("context")


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_prices_are_refused(api_client, number):
    body = '{"user_id": "u1", "item_id": "i1", "event_type": "purchase", "price": NUMBER}'.replace("NUMBER", number)
    response = api_client.post("/v1/events", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "invalid_event"
    assert response.json["detail"][0]["problem"][0]["field"] == "price"


def test_a_batch_that_does_not_fit_the_producer_queue_sends_nothing(settings, topics):
    cfg = settings.kafka.model_copy(update={"queue_max_messages": 2})
    sink = KafkaEventSink(cfg)
    user = f"q-{uuid.uuid4().hex[:8]}"
    events = [Event(user_id=user, item_id=f"i{n}", event_type="view") for n in range(3)]
    with pytest.raises(IngestUnavailableError, match="nothing was sent"):
        sink.send(encode_batch(events, settings.events.max_event_bytes))
    assert len(sink._producer) == 0
    assert consume(settings, settings.kafka.events_topic, user, want=1, timeout_s=5) == []


# --- 3: an outage costs one fast failure, not a timeout per request -------------------------------------

def test_after_a_broker_timeout_ingest_answers_503_at_once(lake, model):
    down = client(with_(lake, kafka={"bootstrap_servers": "127.0.0.1:1", "produce_timeout_s": 1.0,
                                     "breaker_open_s": 30.0}))
    first = down.post("/v1/events", json=_event("u1"))
    assert first.status_code == 503 and first.json["error"] == "ingest_unavailable"
    started = time.monotonic()
    for _ in range(5):
        again = down.post("/v1/events", json=_event("u1"))
        assert again.status_code == 503 and again.headers["Retry-After"]
        assert "failed recently" in again.json["detail"]
    assert time.monotonic() - started < 1.0  # five refusals cost less than one produce timeout


def test_redis_paused_costs_fast_degraded_answers_then_recovers(lake, model, private_redis):
    """Paused Redis: after redis.breaker_failures timeouts every read is degraded at once (it used to wait
    socket_timeout_s for the user state and again for the served-list memory, on every request)."""
    port, procs = private_redis
    cfg = with_(lake, redis={"url": f"redis://127.0.0.1:{port}/0", "breaker_open_s": 1.0},
                experiments={"enabled": True})
    api = client(cfg)
    assert api.get(RECS.format("u1")).json["degraded"] is False
    os.kill(procs[0].pid, signal.SIGSTOP)
    for _ in range(cfg.redis.breaker_failures):  # these pay the timeouts that open the breaker
        assert api.get(RECS.format("u1")).json["degraded"] is True
    took = []
    for n in range(10):
        started = time.monotonic()
        answer = api.get(RECS.format(f"u{n}"))
        took.append(time.monotonic() - started)
        assert answer.status_code == 200 and answer.json["degraded"] is True and answer.json["items"]
    assert statistics.median(took) < cfg.redis.socket_timeout_s  # not even one timeout per request
    os.kill(procs[0].pid, signal.SIGCONT)
    time.sleep(cfg.redis.breaker_open_s)
    assert api.get(RECS.format("u1")).json["degraded"] is False


# --- 12: reads do not write without limit ---------------------------------------------------------------

def test_made_up_user_ids_cannot_fill_redis_with_served_lists(lake, model, redis_client):
    """Every GET for a made-up id used to leave a served-list HASH in Redis for the attribution window."""
    cfg = with_(lake, experiments={"enabled": True, "served_users_max": 5})
    api = client(cfg)
    users = [f"made-up-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    for user in users:
        assert api.get(RECS.format(user)).status_code == 200
    assert api.application.extensions[SERVICES_EXTENSION].memory.get().flush(5.0)  # the worker's writer thread
    pattern = f"{cfg.redis.key_prefix}:user:*:served"
    held = {key.split(":user:")[1].rsplit(":", 1)[0] for key in redis_client.scan_iter(pattern)}
    assert held == set(users[-5:])  # the latest lists stay attributable
    assert redis_client.zcard(f"{cfg.redis.key_prefix}:served:index") == 5
    last = api.get(RECS.format(users[-1])).json
    click = api.post("/v1/events", json=_event(users[-1], item_id=last["items"][0]["item_id"]))
    assert click.status_code == 202


def test_the_local_redis_config_bounds_memory(settings, tmp_path):
    """docker/local/redis.sh writes maxmemory and its policy (run here on a Redis of the test's own)."""
    for _ in range(3):  # a free port can be taken (by a JVM's ephemeral socket) before redis binds it: pick again
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "RECSYS_ENV": "test", "RECSYS__SERVICES__STATE_DIR": str(tmp_path),
               "RECSYS__SERVICES__REDIS_PORT": str(port), "RECSYS__REDIS__URL": f"redis://127.0.0.1:{port}/0"}
        started = subprocess.run(["bash", "docker/local/redis.sh", "up"], cwd=PROJECT_ROOT, env=env,
                                 capture_output=True, text=True)
        if started.returncode == 0 or "already in use" not in started.stderr:
            break
    assert started.returncode == 0, started.stderr
    pid = int((tmp_path / "redis" / "redis.pid").read_text())
    try:
        own = redis.Redis(port=port, decode_responses=True)
        assert int(own.config_get("maxmemory")["maxmemory"]) > 0
        assert own.config_get("maxmemory-policy")["maxmemory-policy"] == settings.services.redis_maxmemory_policy
    finally:
        os.kill(pid, signal.SIGTERM)  # our own instance only (its pid file is under tmp_path)


def test_readiness_is_per_role(api_client):
    ingest = api_client.get("/readyz/ingest")
    assert ingest.status_code == 200 and ingest.json["role"] == "ingest" and set(ingest.json["checks"]) == {"kafka"}
    assert set(api_client.get("/readyz").json["checks"]) == {"model"}  # serving: no broker asked
    assert set(api_client.get("/readyz/all").json["checks"]) == {"model", "redis", "kafka"}
    unknown = api_client.get("/readyz/nope")
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_role"
