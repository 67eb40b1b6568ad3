"""Every serving endpoint on real Redis, Kafka and Delta (delta-rs), with a synthetic model published without
Spark (recsys.demo.synthetic_model) into each test's own Delta root; Redis and Kafka outages included."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import redis
from confluent_kafka import Consumer
from deltalake import DeltaTable, write_deltalake

from api import create_app
from recsys.als.foldin import FoldIn
from recsys.config import Settings, Variant
from recsys.contracts import model_version as mv
from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.served import CONTEXT_REC_ID, CONTEXT_VARIANT, OFF
from recsys.contracts.tables import EVENTS_BRONZE, ITEMS, MODEL_REGISTRY
from recsys.demo.synthetic_model import SyntheticModel, make_model, publish_model
from recsys.kafka.topics import served_topic
from recsys.serving.experiments import assign_variant
from recsys.speed.adjustments import ModelContext, SpeedEvent
from recsys.stores.delta_rs import arrow_schema, ensure_table
from recsys.stores.model_store import query_delta
from tests.integration.conftest import shop_events

pytestmark = pytest.mark.integration

V1, V2 = "2026-01-01.1", "2026-01-02.1"
N_USERS, N_ITEMS, RANK, N_CATEGORIES = 200, 300, 8, 6
RECS = "/v1/users/{}/recommendations"
KEY_ENVS = ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "RECSYS_INGEST_KEYS", "RECSYS_CATALOGUE_KEYS",
            "RECSYS_USER_DATA_KEYS", "RECSYS_ADMIN_KEYS", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture
def lake(settings, tmp_path, topics, redis_client, monkeypatch) -> Settings:
    """This test's own Delta root and Redis namespace (under the run's prefix, cleaned with it); the run's
    topics; the API open (test environment, no keys)."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    return with_(settings, storage={"delta_root": str(tmp_path / "delta")},
                 redis={"key_prefix": f"{settings.redis.key_prefix}:t{uuid.uuid4().hex[:8]}"})


@pytest.fixture
def model(lake) -> SyntheticModel:
    built = make_model(V1, N_USERS, N_ITEMS, RANK, N_CATEGORIES)
    publish_model(lake, built)
    return built


def with_(settings: Settings, **sections: dict) -> Settings:
    """The settings with some keys of some sections replaced."""
    return settings.model_copy(update={
        name: getattr(settings, name).model_copy(update=values) for name, values in sections.items()})


def client(settings: Settings):
    app = create_app(settings)
    app.testing = True
    return app.test_client()


def catalogue(settings: Settings) -> dict[str, dict]:
    """The latest `items` row of each item, as written."""
    rows = query_delta(DeltaTable(settings.table_path(ITEMS.name)), "SELECT * FROM t ORDER BY updated_at").to_pylist()
    return {row["item_id"]: row for row in rows}


def consume(settings: Settings, topic: str, key: str, want: int = 1, timeout_s: float = 30.0) -> list[dict]:
    """The JSON values of `topic`'s messages keyed `key` (at least `want`, or whatever came within the timeout)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"t-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=1.0):
                if message.error() is None and message.key() == key.encode():
                    found.append(json.loads(message.value()))
    finally:
        consumer.close()
    return found


# --- recommendations -----------------------------------------------------------------------------------

def test_recommendations_page_filters_explain_and_exclusions(lake, model):
    api = client(lake)
    categories = dict(zip(model.item_ids, model.categories, strict=True))
    first = api.get(RECS.format("u1") + "?k=10")
    assert first.status_code == 200, first.json
    body = first.json
    assert (body["user_id"], body["model_version"], body["degraded"], body["variant"]) == ("u1", V1, False, OFF)
    assert re.fullmatch(r"[0-9a-f]{32}", body["rec_id"])
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 10 and all(set(i) == {"item_id", "score", "reasons"} and i["reasons"] for i in body["items"])
    assert api.get(RECS.format("u1") + "?k=10").json["rec_id"] != body["rec_id"]  # one id per list served

    page = api.get(RECS.format("u1") + "?k=5&offset=5&explain=true").json["items"]
    assert [i["item_id"] for i in page] == ids[5:]
    assert all(i["contributions"] and abs(sum(i["contributions"].values()) - i["score"]) < 1e-4 for i in page)

    excluded = api.get(RECS.format("u1") + f"?k=10&exclude={ids[0]},{ids[1]}").json["items"]
    assert len(excluded) == 10 and not {ids[0], ids[1]} & {i["item_id"] for i in excluded}

    shoes = api.get(RECS.format("u1") + "?k=8&category=c2").json["items"]
    assert len(shoes) == 8 and {categories[i["item_id"]] for i in shoes} == {"c2"}  # no category cap then
    rows = catalogue(lake)
    brand = api.get(RECS.format("u1") + "?k=5&brand=b7").json["items"]
    assert brand and {rows[i["item_id"]]["brand"] for i in brand} == {"b7"}
    priced = api.get(RECS.format("u1") + "?k=10&min_price=50&max_price=60.5").json["items"]
    assert priced and all(50 <= rows[i["item_id"]]["price"] <= 60.5 for i in priced)


@pytest.mark.parametrize("query", [
    "offset=-1", "offset=100000", "exclude=a,,b", "exclude=,", "exclude=bad%20id", "min_price=-1",
    "max_price=nan", "explain=maybe", "category=", "exclude=" + ",".join(f"i{n}" for n in range(101)),
])
def test_bad_recommendation_parameters_get_400(lake, query):
    response = client(lake).get(RECS.format("u1") + "?" + query)
    assert response.status_code == 400 and response.json["error"] == "invalid_request", response.json


def test_without_a_published_model_every_read_answers_200_and_empty(lake):
    api = client(lake)
    body = api.get(RECS.format("u1")).json
    assert (body["model_version"], body["items"], body["degraded"]) == (None, [], False)
    anonymous = api.post("/v1/recommendations/anonymous", json={"seen_items": ["i1"]})
    assert anonymous.status_code == 200 and anonymous.json["model_version"] is None
    assert api.get("/v1/items/i1/similar").json == {"item_id": "i1", "items": []}
    assert api.get("/v1/trending").status_code == 200
    assert api.get("/readyz").status_code == 503


def test_anonymous_visitor_gets_the_seen_items_category_first(lake, model):
    seen = [i for i, c in zip(model.item_ids, model.categories, strict=True) if c == "c3"][:5]
    categories = dict(zip(model.item_ids, model.categories, strict=True))
    response = client(lake).post("/v1/recommendations/anonymous", json={"seen_items": seen, "k": 6})
    assert response.status_code == 200, response.json
    items = [i["item_id"] for i in response.json["items"]]
    assert response.json["model_version"] == V1 and len(items) == 6 and not set(items) & set(seen)
    cap = lake.serving.max_per_category
    assert [categories[i] for i in items[:cap]] == ["c3"] * cap  # the category cap then lets others in
    bad = client(lake).post("/v1/recommendations/anonymous", json={"seen_items": ["i1"], "user": "x"})
    assert bad.status_code == 400


def test_similar_items_and_unknown_item(lake, model):
    api = client(lake)
    response = api.get("/v1/items/i3/similar?k=4")
    assert response.status_code == 200
    items = response.json["items"]
    assert len(items) == 4 and "i3" not in {i["item_id"] for i in items} and all(i["reasons"] for i in items)
    missing = api.get("/v1/items/nope/similar")
    assert missing.status_code == 404 and missing.json["error"] == "unknown_item"


def test_trending_reads_the_live_view_and_filters_by_category(lake, model, redis_client):
    keys = RedisKeys(lake.redis.key_prefix)
    live = {item: float(100 - n) for n, item in enumerate(model.item_ids[:30])}
    redis_client.zadd(keys.trending(), live)
    api = client(lake)
    body = api.get("/v1/trending?k=3").json
    assert body["degraded"] is False and [i["item_id"] for i in body["items"]] == model.item_ids[:3]
    category = model.categories[0]
    filtered = api.get(f"/v1/trending?k=50&category={category}").json["items"]
    expected = [i for i, c in zip(model.item_ids[:30], model.categories[:30], strict=True) if c == category]
    assert [i["item_id"] for i in filtered][:len(expected)] == expected
    assert all(i["reasons"] == ["popular"] for i in filtered[len(expected):])  # topped up: never short


# --- catalogue, admin ----------------------------------------------------------------------------------

def _register_rejected(settings: Settings, version: str, status: str = mv.REJECTED) -> None:
    ensure_table(settings, MODEL_REGISTRY)
    row = {"model_version": version, "created_at": datetime.now(UTC), "run_date": "2026-01-03",
           "status": status, "params": "{}", "metrics": "{}", "gate_reason": "ndcg below the floor"}
    write_deltalake(settings.table_path(MODEL_REGISTRY.name),
                    pa.Table.from_pylist([row], schema=arrow_schema(MODEL_REGISTRY)), mode="append")


def test_put_items_is_served_at_once_and_activation_switches_models(lake, model):
    publish_model(lake, make_model(V2, N_USERS, N_ITEMS, RANK, N_CATEGORIES, seed=8))  # V2 current
    api = client(lake)
    assert api.get(RECS.format("u1")).json["model_version"] == V2
    back = api.post(f"/v1/admin/models/{V1}/activate")
    assert back.status_code == 200 and back.json == {"previous": V2, "current": V1}
    assert api.get(RECS.format("u1")).json["model_version"] == V1  # this worker's next request

    put = api.put("/v1/items", json=[{"item_id": "i5", "title": "Fresh thing", "category": "fresh", "price": 3.5},
                                     {"item_id": "brand-new", "category": "fresh"}])
    assert put.status_code == 200 and put.json["inserted"] == 1
    assert put.json["updated"] == 2  # i5's row of each published model's catalogue (publish_model appends one)
    assert catalogue(lake)["i5"]["category"] == "fresh"
    deadline = time.monotonic() + 5  # the live catalogue: served from V1 within serving.catalogue_poll_s
    while [i["item_id"] for i in api.get(RECS.format("u1") + "?category=fresh").json["items"]] != ["i5"]:
        assert time.monotonic() < deadline, "the PUT did not reach the served V1"
        time.sleep(0.1)
    forward = api.post(f"/v1/admin/models/{V2}/activate")
    assert forward.json == {"previous": V1, "current": V2}
    answer = api.get(RECS.format("u1") + "?category=fresh").json
    assert answer["model_version"] == V2 and [i["item_id"] for i in answer["items"]] == ["i5"]

    unknown = api.post("/v1/admin/models/2099-01-01.1/activate")
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_version"
    _register_rejected(lake, "2026-01-03.1")
    rejected = api.post("/v1/admin/models/2026-01-03.1/activate")
    assert rejected.status_code == 409 and rejected.json["error"] == "version_rejected"
    _register_rejected(lake, "2026-01-03.2", mv.CANDIDATE)  # never gated: not activatable either
    candidate = api.post("/v1/admin/models/2026-01-03.2/activate")
    assert candidate.status_code == 409 and "not approved or published" in candidate.json["detail"]
    assert api.post("/v1/admin/models/bad%20version/activate").status_code == 400
    too_many = [{"item_id": f"x{n}"} for n in range(lake.delta_rs.max_upsert_rows + 1)]
    assert api.put("/v1/items", json=too_many).status_code == 400
    assert api.put("/v1/items", json=[{"item_id": "i1", "colour": "red"}]).status_code == 400


def _shop(settings: Settings, user: str, start: float) -> None:
    """The user's real-time state as the stream leaves it, and the same events in bronze."""
    events = [SpeedEvent(user, "i1", "view", start, "s1"), SpeedEvent(user, "i2", "add_to_cart", start + 60, "s1"),
              SpeedEvent(user, "i3", "purchase", start + 120, "s1")]
    shop_events(settings, events, {"i1": ("c1", "b1")},
                ModelContext(V1, FoldIn(["i1", "i2", "i3"], np.eye(3)), lambda _: None))


def test_users_attributes_history_and_forgetting(lake, model, redis_client):
    api = client(lake)
    user = f"shopper-{uuid.uuid4().hex[:6]}"
    put = api.put("/v1/users", json=[{"user_id": user, "age_band": "25-34", "gender": "f"}])
    assert put.status_code == 200 and put.json == {"inserted": 1, "updated": 0}
    _shop(lake, user, float(int(time.time()) - 600))
    history = api.get(f"/v1/users/{user}/history?limit=10")
    assert history.status_code == 200 and history.json["user_id"] == user and not history.json["degraded"]
    assert [r["item_id"] for r in history.json["realtime"]["recent"]] == ["i3", "i2", "i1"]
    assert [e["item_id"] for e in history.json["events"]] == ["i3", "i2", "i1"]
    assert api.get(f"/v1/users/{user}/history").json["events"] is None  # limit 0: the real-time state only

    keys = RedisKeys(lake.redis.key_prefix)
    assert redis_client.exists(*keys.user_keys(user)) == 2
    forgot = api.delete(f"/v1/users/{user}")
    assert forgot.status_code == 200, forgot.json
    assert forgot.json["user_id"] == user and forgot.json["redis_keys"] == 2
    assert forgot.json["delta_rows"]["events_bronze"] == 3 and forgot.json["delta_rows"]["users"] == 1
    assert redis_client.exists(*keys.user_keys(user)) == 0
    bronze = query_delta(DeltaTable(lake.table_path(EVENTS_BRONZE.name)),
                         f"SELECT COUNT(*) AS n FROM t WHERE user_id = '{user}'").column("n")[0].as_py()
    assert bronze == 0
    after = api.get(f"/v1/users/{user}/history?limit=10").json
    assert after["events"] == [] and after["realtime"]["recent"] == []
    assert api.get(f"/v1/users/{user}/history?limit={lake.delta_rs.max_history_events + 1}").status_code == 400


# --- A/B variants and attribution ----------------------------------------------------------------------

def test_variants_are_deterministic_recorded_and_clicks_carry_the_list(lake, model):
    cfg = with_(lake, experiments={"enabled": True})
    api = client(cfg)
    seen = {}
    for n in range(20):
        user = f"u{n}"
        first, again = api.get(RECS.format(user) + "?k=3").json, api.get(RECS.format(user) + "?k=3").json
        assert first["variant"] == again["variant"] == assign_variant(user, cfg.experiments).name
        seen[user] = first
    assert {a["variant"] for a in seen.values()} == {v.name for v in cfg.experiments.variants}

    user = f"ab-{uuid.uuid4().hex[:8]}"
    answer = api.get(RECS.format(user) + "?k=4").json
    records = consume(cfg, served_topic(cfg), user)
    assert len(records) == 1 and records[0]["rec_id"] == answer["rec_id"]
    assert (records[0]["experiment"], records[0]["variant"], records[0]["model_version"]) == (
        cfg.experiments.name, answer["variant"], V1)
    assert records[0]["item_ids"] == [i["item_id"] for i in answer["items"]]

    clicked = answer["items"][0]["item_id"]
    events = [{"user_id": user, "item_id": clicked, "event_type": "click"},
              {"user_id": user, "item_id": "not-shown", "event_type": "view"}]
    assert api.post("/v1/events", json=events).status_code == 202
    produced = {e["item_id"]: e for e in consume(cfg, cfg.kafka.events_topic, user, want=2)}
    assert produced[clicked]["context"] == {CONTEXT_REC_ID: answer["rec_id"], CONTEXT_VARIANT: answer["variant"]}
    assert "context" not in produced["not-shown"]
    metrics = api.get("/metrics").get_data(as_text=True)
    assert re.search(r'^recsys_served_records_total\{outcome="queued"\} [1-9]', metrics, re.MULTILINE)


def test_a_variant_is_served_its_pinned_version_and_an_unservable_pin_is_ignored(lake, model):
    publish_model(lake, make_model(V2, N_USERS, N_ITEMS, RANK, N_CATEGORIES, seed=8))  # V2 current
    pinned = with_(lake, experiments={"enabled": True, "variants": [Variant(name="old", share=1.0, model_version=V1)]})
    assert client(pinned).get(RECS.format("u1")).json["model_version"] == V1
    broken = with_(lake, experiments={"enabled": True,
                                      "variants": [Variant(name="gone", share=1.0, model_version="2099-01-01.1")]})
    answer = client(broken).get(RECS.format("u1")).json
    assert (answer["variant"], answer["model_version"]) == ("gone", V2)


# --- outages -------------------------------------------------------------------------------------------

def _start_redis(port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by `make setup`"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    probe = redis.Redis(port=port)
    for _ in range(100):
        try:
            probe.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"redis-server on port {port} did not start")


@pytest.fixture
def private_redis():
    """A Redis of this test's own on a free port, so stopping it leaves the shared one alone."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [_start_redis(port)]
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(10)


def test_redis_paused_and_restarted_degrades_answers_then_recovers(lake, model, private_redis):
    port, procs = private_redis
    cfg = with_(lake, redis={"url": f"redis://127.0.0.1:{port}/0", "breaker_open_s": 0.5},
                experiments={"enabled": True})
    api = client(cfg)

    def answers() -> list[bool]:
        recs, trend = api.get(RECS.format("u1")), api.get("/v1/trending")
        anonymous = api.post("/v1/recommendations/anonymous", json={"seen_items": ["i1"]})
        assert (recs.status_code, trend.status_code, anonymous.status_code) == (200, 200, 200)
        assert recs.json["items"] and anonymous.json["items"]  # trending: the live view is empty, popularity is not
        return [recs.json["degraded"], trend.json["degraded"], anonymous.json["degraded"]]

    assert answers() == [False, False, False]
    os.kill(procs[0].pid, signal.SIGSTOP)  # Redis stops answering: commands time out
    started = time.monotonic()
    assert answers() == [True, True, True]
    assert time.monotonic() - started < 3.0  # a few socket timeouts (redis.socket_timeout_s), never a hang
    history = api.get("/v1/users/u1/history")  # Redis was the only source asked for
    assert history.status_code == 503 and history.headers["Retry-After"] and history.json["error"]
    assert api.post("/v1/events", json={"user_id": "u1", "item_id": "i1", "event_type": "view"}).status_code == 202
    os.kill(procs[0].pid, signal.SIGCONT)
    time.sleep(cfg.redis.breaker_open_s)  # the breaker tries Redis again after this long
    assert answers() == [False, False, False]

    procs[0].terminate()  # stopped: connections refused
    procs[0].wait(10)
    assert answers() == [True, True, True]
    procs.append(_start_redis(port))  # started again, empty
    time.sleep(cfg.redis.breaker_open_s)
    assert answers() == [False, False, False]
    metrics = api.get("/metrics").get_data(as_text=True)
    assert re.search(r'^recsys_attribution_errors_total\{operation="remember"\} [1-9]', metrics, re.MULTILINE)


def test_kafka_down_answers_503_with_retry_after_and_loses_nothing_acknowledged(lake, model):
    up = client(lake)
    down = client(with_(lake, kafka={"bootstrap_servers": "127.0.0.1:1", "produce_timeout_s": 1.0}))
    user = f"k-{uuid.uuid4().hex[:8]}"
    batches = [[{"user_id": user, "item_id": f"i{n}", "event_type": "view", "event_id": f"{user}-{b}-{n}"}
                for n in range(3)] for b in range(2)]
    acknowledged = list(up.post("/v1/events", json=batches[0]).json["event_ids"])
    started = time.monotonic()
    refused = down.post("/v1/events", json=batches[1])
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert refused.json["error"] == "ingest_unavailable" and refused.json["detail"]
    recs = down.get(RECS.format("u1"))  # the served record is dropped, the request never waits for it
    assert recs.status_code == 200 and recs.json["items"]
    assert time.monotonic() - started < 3 * lake.kafka.produce_timeout_s + 1
    retried = up.post("/v1/events", json=batches[1])  # the client retries after Retry-After
    assert retried.status_code == 202
    acknowledged += retried.json["event_ids"]
    produced = [e["event_id"] for e in consume(lake, lake.kafka.events_topic, user, want=len(acknowledged))]
    assert sorted(produced) == sorted(acknowledged)
