"""The live catalogue on real Redis, Delta and Spark: a catalogue change reaches two workers (two apps, each
polling on its own) without a model reload; a new item is recommended and explained before any batch run; the
speed layer (one realtime micro-batch on Spark) folds in its vector and the next model supersedes it; trending
falls back on a fresh start; ids the catalogue lacks are never served."""

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
import redis

from api import create_app
from recsys.contracts.redis_keys import RedisKeys, decode_vector
from recsys.demo.synthetic_model import SyntheticModel, make_model, publish_model
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.stream import apply_realtime_batch
from tests.integration.conftest import shop_events

pytestmark = pytest.mark.integration
V1, V2 = "2026-02-01.1", "2026-02-02.1"
N_USERS, N_ITEMS, RANK, N_CATEGORIES = 60, 120, 8, 4
KAFKA_ROWS = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"
BOUND_S = 5.0  # the bound: a change seen in every worker's answers within 5 s
RECS = "/v1/users/{}/recommendations"
KEY_ENVS = ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "RECSYS_INGEST_KEYS", "RECSYS_CATALOGUE_KEYS",
            "RECSYS_USER_DATA_KEYS", "RECSYS_ADMIN_KEYS", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture
def shop(own_lake, topics, redis_client, monkeypatch):
    """A Delta root and Redis namespace of this test's own, with model V1 published."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    prefix = f"{own_lake.redis.key_prefix}:live{uuid.uuid4().hex[:8]}"
    settings = own_lake.model_copy(update={"redis": own_lake.redis.model_copy(update={"key_prefix": prefix})})
    model = make_model(V1, N_USERS, N_ITEMS, RANK, N_CATEGORIES)
    publish_model(settings, model)
    return settings, model


def worker(settings):
    app = create_app(settings)
    app.testing = True
    return app.test_client()


def ids(body) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def within(bound_s: float, check: Callable[[], bool]) -> bool:
    """Whether `check` holds before `bound_s` has passed (polled every 50 ms)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_catalogue_change_reaches_every_worker_without_a_model_reload(shop, redis_client):
    settings, model = shop
    workers = [worker(settings), worker(settings)]
    keys = RedisKeys(settings.redis.key_prefix)
    fresh = workers[1].get("/v1/trending?k=5").json  # a fresh start: no live view yet
    assert not fresh["degraded"] and len(fresh["items"]) == 5 and fresh["items"][0]["reasons"] == ["popular"]
    top = ids(workers[0].get(RECS.format("u1")).json)[0]
    redis_client.zadd(keys.trending(), {top: 100.0, "probe": 99.0})  # the demo's probe id is in no catalogue
    trending = ids(workers[1].get("/v1/trending?k=5").json)
    assert trending[0] == top and "probe" not in trending

    done = workers[0].patch("/v1/items", json=[{"item_id": top, "available": False}])
    assert done.status_code == 200 and done.json["updated"] == 1 and done.json["catalogue_version"] >= 1

    def gone_everywhere() -> bool:
        return all(top not in ids(w.get(RECS.format("u1")).json) and top not in ids(w.get("/v1/trending?k=5").json)
                   and top not in ids(w.get(f"/v1/items/{model.item_ids[0]}/similar?k=50").json) for w in workers)

    assert within(BOUND_S, gone_everywhere)
    assert top in ids(workers[1].get(RECS.format("u1") + "?include_unavailable=true").json)
    assert workers[1].patch("/v1/items", json={"item_id": top, "blocked": True}).status_code == 200  # one item
    assert within(BOUND_S, lambda: all(
        top not in ids(w.get(RECS.format("u1") + "?include_unavailable=true&k=50").json) for w in workers))

    # Live attributes: a price and category change filters at once, no model reload.
    item = model.item_ids[3]
    assert workers[0].put("/v1/items", json={"item_id": item, "category": "fresh", "price": 1.25}).status_code == 200
    assert within(BOUND_S, lambda: all(
        ids(w.get(RECS.format("u1") + "?category=fresh").json) == [item] for w in workers))
    assert item in ids(workers[1].get(RECS.format("u1") + "?max_price=1.5&k=50").json)

    # A new item has a content profile at once: a shopper who viewed a like item is shown it, explained.
    put = workers[0].put("/v1/items", json=[{"item_id": "n-seen", "title": "trail runner shoe", "category": "c0"},
                                            {"item_id": "n-like", "title": "trail runner shoe pro", "category": "c0"}])
    assert put.status_code == 200 and put.json["inserted"] == 2
    shop_events(settings, [SpeedEvent("visitor", "n-seen", "view", time.time())], {}, None)

    def new_like() -> bool:
        items = {i["item_id"]: i["reasons"] for i in workers[1].get(RECS.format("visitor")).json["items"]}
        return "new, like n-seen" in items.get("n-like", [])

    assert within(BOUND_S, new_like)
    assert "n-seen" in ids(workers[0].get("/v1/items/n-like/similar").json)
    everything = [workers[0].get(RECS.format(u) + "?k=100").json for u in ("u1", "u2", "visitor")]
    assert all("probe" not in ids(body) for body in everything)


@pytest.mark.spark
def test_the_speed_layer_folds_in_a_new_items_vector_and_the_next_model_supersedes_it(spark, shop):
    settings, model = shop
    api = worker(settings)
    assert api.put("/v1/items", json={"item_id": "n1", "title": "brand new thing", "category": "c1"}).status_code == 200
    now = time.time()
    viewers = model.user_ids[:6]  # known shoppers: their batch vectors fold the item in
    records = [(json.dumps({"event_id": f"{u}-{k}", "user_id": u, "item_id": item, "event_type": "view",
                            "ts": datetime.fromtimestamp(now - 5 + k, UTC).isoformat()}).encode(),
                "t-live", 0, n, datetime.now(UTC))
               for n, (u, k, item) in enumerate((u, k, item) for u in viewers
                                                for k, item in enumerate((model.item_ids[0], "n1")))]
    # One micro-batch of the realtime query as Spark runs it (the Kafka source's rows, without the broker).
    apply_realtime_batch(spark.createDataFrame(records, KAFKA_ROWS), 0, settings, f"q-{uuid.uuid4().hex[:8]}", V1)

    keys = RedisKeys(settings.redis.key_prefix)
    live = redis.Redis.from_url(settings.redis.url).hget(keys.live_item_vectors(V1), "n1")
    vector = decode_vector(live, RANK)
    assert vector is not None and np.any(vector)
    served = api.application.extensions["recsys"].live
    assert within(BOUND_S, lambda: "n1" in served().item_index)  # joined the factor rows of V1
    similar = api.get(f"/v1/items/{model.item_ids[0]}/similar?k=20").json
    assert "n1" in ids(similar)  # viewed together, and now a catalogue item serving ranks
    shown = api.get(RECS.format(viewers[0]) + "?k=20&explain=true").json
    assert "n1" in ids(shown)

    batch_vector = np.full(RANK, 0.05, dtype=np.float32)
    publish_model(settings, SyntheticModel(V2, model.user_ids, [*model.item_ids, "n1"],
                                           [*model.categories, "c1"], np.vstack([model.item_factors, batch_vector]),
                                           model.user_factors))
    assert within(BOUND_S, lambda: served().version == V2)
    handed = served()
    assert np.allclose(handed.item_factors[handed.item_index["n1"]], batch_vector)  # the batch factors win
    assert handed.n_items == N_ITEMS + 1 and "n1" in ids(api.get(f"/v1/items/{model.item_ids[0]}/similar?k=20").json)
