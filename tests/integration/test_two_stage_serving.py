"""Two-stage serving on real Redis and a published model: agreement with full scoring, one mapped copy of each
version across workers and swaps, and Redis down still degraded rather than failing."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from api.services import SERVICES_EXTENSION
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.serving.merge import rank_items
from recsys.serving.results import RecommendationQuery
from recsys.speed import context
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.redis_state import RedisStateWriter
from recsys.stores.model_store import DeltaModelStore
from recsys.stores.online_store import RedisOnlineStore
from recsys.stores.shared_ids import SharedIdIndex, SharedIds
from recsys.stores.shared_model import is_shared, memmap_of
from recsys.stores.shared_model_store import SharedModelStore, VersionLoadError
from tests.integration.test_api_endpoints import RECS, client, with_
from tests.unit.test_candidates import shoppers

pytestmark = pytest.mark.integration
N_USERS, N_ITEMS, RANK, N_CATEGORIES = 20, 2000, 8, 12
SMALL_POOLS = {"ann_k": 100, "recent_k": 50, "per_attribute": 50, "popular": 50, "per_category_cap": 30}


@pytest.fixture
def shop(settings, tmp_path, topics, redis_client, monkeypatch):
    """Its own lake, Redis namespace and model cache; a published model with two-stage pools far below the
    catalogue; every shopper with a few live events."""
    for name in ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)
    retrieval = settings.serving.retrieval.model_copy(update={
        **SMALL_POOLS, "cache_dir": str(tmp_path / "model-cache"),
        "ann": settings.serving.retrieval.ann.model_copy(update={"exact_below": 0})})  # the HNSW index
    lake = with_(settings, storage={"delta_root": str(tmp_path / "delta")},
                 redis={"key_prefix": f"{settings.redis.key_prefix}:t{uuid.uuid4().hex[:8]}"},
                 serving={"retrieval": retrieval})
    model = make_model(f"two.{uuid.uuid4().hex[:6]}", N_USERS, N_ITEMS, RANK, N_CATEGORIES)
    version = publish_model(lake, model)
    rng = np.random.default_rng(4)
    now = time.time()
    events = [SpeedEvent(f"u{u}", f"i{rng.integers(N_ITEMS)}", "view", now - 100 + n) for u in range(N_USERS)
              for n in range(4)]
    writer = RedisStateWriter(lake, context.catalogue(lake), context.model_context(lake, version))
    writer.apply(events, f"q-{uuid.uuid4().hex[:6]}", 0, 0)
    writer.close()
    return lake


def mode(settings, name: str):
    return with_(settings, serving={"retrieval": settings.serving.retrieval.model_copy(update={"mode": name})})


def exact_retrieval(settings):
    """Exact search in place of the HNSW index, as serving does below `ann.exact_below` items. At rank 8 over
    2,000 items an inner-product HNSW graph misses the best item for ~1.4% of queries (measured over 20 builds),
    and two-stage scales the factors signal by the best candidate: agreement is checked on the candidates and
    the merge, not on the index's recall, which the serving bench measures as NDCG against full scoring."""
    retrieval = settings.serving.retrieval
    ann = retrieval.ann.model_copy(update={"exact_below": N_ITEMS + 1})
    return with_(settings, serving={"retrieval": retrieval.model_copy(update={"ann": ann})})


def test_two_stage_and_full_scoring_agree_on_a_small_model(shop):
    exact = exact_retrieval(shop)
    two_stage, full = client(exact), client(mode(exact, "full"))
    overlap = []
    for user in range(N_USERS):
        for query in ("k=10&explain=true", "k=5&category=c3"):
            a, b = (api.get(RECS.format(f"u{user}") + "?" + query).json for api in (two_stage, full))
            assert a["degraded"] is b["degraded"] is False and len(a["items"]) == len(b["items"])
            scores = {item["item_id"]: item["score"] for item in b["items"]}
            assert all(item["score"] == pytest.approx(scores[item["item_id"]], abs=1e-5)
                       for item in a["items"] if item["item_id"] in scores)
            overlap.append(len(scores.keys() & {i["item_id"] for i in a["items"]}) / len(b["items"]))
    assert np.mean(overlap) >= 0.9


def test_workers_and_a_swap_serve_from_one_mapped_copy_per_version(shop):
    first, second = client(shop), client(shop)  # two workers of one machine
    assert first.get(RECS.format("u1")).json["items"] and second.get(RECS.format("u1")).json["items"]
    models = [api.application.extensions[SERVICES_EXTENSION].models.get() for api in (first, second)]
    assert all(is_shared(m.item_factors) and is_shared(m.user_factors) for m in models)
    assert memmap_of(models[0].item_factors).filename == memmap_of(models[1].item_factors).filename
    cache = [p for p in Path(shop.path(shop.serving.retrieval.cache_dir)).iterdir() if p.is_dir()]
    assert len(cache) == 1 and (cache[0] / "items.usearch").is_file()

    newer = publish_model(shop, make_model(f"two.{uuid.uuid4().hex[:6]}", N_USERS, N_ITEMS, RANK, N_CATEGORIES,
                                           seed=8))
    answer = first.get(RECS.format("u1")).json  # serving.model_refresh_s is 0 in tests: the swap happens here
    assert answer["model_version"] == newer and answer["items"]
    swapped = first.application.extensions[SERVICES_EXTENSION].models.get()
    assert is_shared(swapped.item_factors)
    assert memmap_of(swapped.item_factors).filename != memmap_of(models[0].item_factors).filename
    assert not np.shares_memory(swapped.item_factors, models[0].item_factors)


def test_redis_down_still_serves_two_stage_lists_marked_degraded(shop):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = client(with_(shop, redis={"url": f"redis://127.0.0.1:{port}/0"}))
    answer = api.get(RECS.format("u1") + "?k=10&explain=true")
    assert answer.status_code == 200 and answer.json["degraded"] is True and len(answer.json["items"]) == 10


def test_one_script_reads_what_the_two_pipelines_read(shop):
    store = RedisOnlineStore(shop.redis)
    version = DeltaModelStore(shop).current_version()
    for user in ("u1", "u2", "nobody"):
        state, signals = store.request_state(user, version, RANK, 10, 3600.0, 5, 20, 50)
        piped = store.user_state(user, version, RANK, 10, 3600.0)
        assert (state.recent, state.purchased, state.cart, state.erased_at) == (
            piped.recent, piped.purchased, piped.cart, piped.erased_at)
        assert state.interests == pytest.approx(piped.interests, rel=1e-3)  # decayed to two "now"s
        assert (state.vector is None and piped.vector is None) or np.array_equal(state.vector, piped.vector)
        assert signals == store.item_signals(state.recent[:5], 20, 50)
        assert (user == "nobody") == (not state.recent)


def test_the_request_script_is_loaded_again_after_redis_lost_it(shop, redis_client):
    store = RedisOnlineStore(shop.redis)
    version = DeltaModelStore(shop).current_version()
    before = store.request_state("u1", version, RANK, 10, 3600.0, 5, 20, 50)
    redis_client.script_flush()  # what a Redis restart does to loaded scripts
    after = store.request_state("u1", version, RANK, 10, 3600.0, 5, 20, 50)
    assert before[0].recent and after[0].recent == before[0].recent and after[1] == before[1]


def test_a_worker_maps_the_version_a_child_process_read(shop):
    store, lake = SharedModelStore(shop), DeltaModelStore(shop)
    version = store.current_version()
    served, loaded = store.load(version), lake.load(version)
    assert isinstance(served.all_item_ids, SharedIds) and isinstance(served.all_index, SharedIdIndex)
    assert all(is_shared(a) for a in (served.item_factors, served.user_factors, served.attributes.category,
                                      served.retrieval.popular))
    assert list(served.all_item_ids) == loaded.all_item_ids and dict(served.user_ids) == loaded.user_ids
    assert (served.version, served.trained_at, served.merge, served.segment_popular) == (
        loaded.version, loaded.trained_at, loaded.merge, loaded.segment_popular)
    query = RecommendationQuery(k=10, explain=True)
    for shopper in shoppers(loaded, 6):
        ours = rank_items(served, shop.serving, shop.serving.merge, shopper, query, 1e9).items
        assert ours == rank_items(loaded, shop.serving, shop.serving.merge, shopper, query, 1e9).items
    with pytest.raises(VersionLoadError, match=r"no\.such\.version"):
        store.load("no.such.version")
