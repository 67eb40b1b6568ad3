"""What serving reads: catalogue arrays, similar-items rows, the Delta model (delta-rs) and Redis pipelines."""

import json
import time
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from recsys.config import load_settings
from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import encode_vector
from recsys.contracts.tables import ITEM_FACTORS, ITEMS, SIMILAR_ITEMS, USER_FACTORS
from recsys.serving.top_k import top_rows
from recsys.stores.attribute_arrays import UNKNOWN, AttributeArrays, ItemCatalogue
from recsys.stores.model_store import DeltaModelStore
from recsys.stores.online_store import RedisOnlineStore
from recsys.stores.similar_items import SimilarItems

pytestmark = pytest.mark.unit


def test_attribute_arrays_code_values_and_filter_with_masks():
    catalogue = ItemCatalogue.from_rows({"a": ("shoes", "acme", 10.0), "b": ("bags", None, None), "c": ("", "x", 3.0)})
    aligned = catalogue.align(["c", "zz", "a"])
    assert aligned.category_of(2) == "shoes" and aligned.category_of(1) is None and aligned.category_of(0) is None
    assert aligned.brand[1] == UNKNOWN and np.isnan(aligned.price[1])
    assert aligned.mask().tolist() == [True, False, True]  # "zz" is not in the catalogue: never served
    assert catalogue.align(["c", "a"]).mask() is None  # no filter and every item servable
    assert aligned.mask(category="shoes").tolist() == [False, False, True]
    assert aligned.mask(max_price=5).tolist() == [True, False, False]
    assert aligned.mask(brand="nope").tolist() == [False, False, False]
    assert AttributeArrays.unknown(2).mask(min_price=0).tolist() == [False, False]


def test_attribute_arrays_take_known_rows_as_the_catalogue_has_them_and_unknown_rows_as_withdrawn():
    attributes = AttributeArrays.from_values(["c1", None, "c2", "c1"], ["b1", "b2", None, "b2"],
                                             [1.0, None, 3.0, 4.0], [0, 1, 0, 2])
    known = attributes.take(np.array([3, 0, 1]))
    assert known.category.tolist() == [0, 0, UNKNOWN] and known.brand.tolist() == [1, 0, 1]
    assert known.status.tolist() == [2, 0, 1] and known.category_code is attributes.category_code  # shared, not rebuilt
    assert known.mask(category="c1").tolist() == [False, True, False]  # the withdrawn row never passes
    assert attributes.take(np.array([0, 2])).status is None  # every row servable: no status to check
    some = attributes.take(np.array([2, -1]))
    assert some.category.tolist() == [1, UNKNOWN] and some.status.tolist() == [0, 2]  # -1: not in the catalogue


def test_similar_items_rows_follow_rank_whatever_the_input_order():
    similar = SimilarItems.from_pairs(["a", "b", "a", "a"], ["c", "a", "b", "d"], [0.2, 0.7, 0.9, 0.5], [3, 1, 1, 2])
    assert similar.of("a", 5) == [("b", pytest.approx(0.9)), ("d", 0.5), ("c", pytest.approx(0.2))]
    assert similar.of("a", 1) == [("b", pytest.approx(0.9))]
    assert similar.of("c", 3) == [] and similar.of("zz", 3) == []


def test_category_cap_widens_its_pool_until_the_page_is_full():
    scores = np.arange(100, 0, -1, dtype=np.float32)  # row 0 best
    categories = np.zeros(100, dtype=np.int32)
    categories[90:] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # the other categories sit at the bottom
    rows = top_rows(scores, 4, categories=categories, cap=1)
    assert rows.tolist() == [0, 90, 91, 92]
    scores[[5, 7]] = -np.inf
    assert top_rows(scores, 3, offset=4).tolist() == [4, 6, 8]


def write(settings, spec, table: pa.Table) -> None:
    partitions = list(spec.partition_by) or None
    write_deltalake(settings.table_path(spec.name), table, partition_by=partitions, mode="append")


@pytest.fixture
def lake(tmp_path):
    settings = load_settings("test", environ={"RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta")})
    factors = pa.list_(pa.float32())
    write(settings, USER_FACTORS, pa.table({"model_version": ["v1"], "user_id": ["u1"]}).append_column(
        "factors", pa.array([[1.0, 0.0]], type=factors)))
    write(settings, ITEM_FACTORS, pa.table({
        "model_version": ["v1"] * 3, "item_id": ["a1", "a2", "b1"],
        "factors": pa.array([[1, 0], [0.9, 0.1], [0, 1]], type=factors), "popularity": [3.0, 2.0, 9.0]}))
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    write(settings, ITEMS, pa.table({
        "item_id": ["a1", "a1", "b1"], "title": ["old", "new", "bag"], "category": ["hats", "shoes", "bags"],
        "brand": ["acme", "acme", None], "price": [1.0, 10.0, None],
        "updated_at": pa.array([t0, t1, t0], type=pa.timestamp("us", tz="UTC"))}))
    write(settings, SIMILAR_ITEMS, pa.table({
        "model_version": ["v1"] * 3 + ["v0"], "item_id": ["a1", "a1", "b1", "a1"],
        "similar_id": ["b1", "a2", "a1", "zz"], "score": [0.1, 0.8, 0.1, 1.0],
        "rank": pa.array([2, 1, 1, 1], type=pa.int32())}))
    return settings


def test_delta_model_store_loads_catalogue_and_similar_items_as_extras(lake):
    model = DeltaModelStore(lake).load("v1")
    assert model.attributes.category_of(model.all_index["a1"]) == "shoes"  # the latest row per item
    assert model.attributes.category_of(model.all_index["a2"]) is None  # not in the catalogue
    assert np.isnan(model.attributes.price[model.all_index["b1"]])
    assert model.similar.of("a1", 5) == [("a2", pytest.approx(0.8)), ("b1", pytest.approx(0.1))]
    lean = DeltaModelStore(lake).load("v1", extras=False)
    assert lean.catalogue is None and lean.similar is None and lean.attributes.mask(category="shoes").sum() == 0
    assert lean.item_factors.dtype == np.float32 and lean.item_factors.shape == (3, 2)


def test_delta_model_store_without_catalogue_tables(tmp_path, lake):
    import shutil

    shutil.rmtree(lake.table_path(ITEMS.name))
    shutil.rmtree(lake.table_path(SIMILAR_ITEMS.name))
    model = DeltaModelStore(lake).load("v1")
    assert model.catalogue is None and model.similar is None
    assert model.attributes.mask() is None and not model.attributes.mask(brand="acme").any()


class FakePipeline:
    def __init__(self, replies: dict, log: list):
        self.replies, self.log, self.queued = replies, log, []

    def __getattr__(self, command):
        def queue(key, *args, **kwargs):
            self.queued.append(self.replies.get((command, key), [] if command == "zrevrange" else None))
            return self
        return queue

    def execute(self):
        self.log.append(len(self.queued))
        return self.queued


class FakeClient:
    def __init__(self, replies: dict):
        self.replies, self.executed = replies, []

    def pipeline(self, transaction=True):
        return FakePipeline(self.replies, self.executed)


def test_redis_user_state_is_one_pipeline_round_trip():
    settings = load_settings("test", environ={})
    keys = rk.RedisKeys(settings.redis.key_prefix)
    now = int(time.time())
    fields = {rk.PROFILE_MODEL: "v1", rk.PROFILE_PURCHASED: ["p1"], rk.PROFILE_CART: ["c1"],
              rk.PROFILE_INTERESTS: {"c:shoes": 4.0, "b:acme": 8.0}, rk.PROFILE_INTERESTS_TS: now - 3600}
    raw = FakeClient({("zrevrange", keys.recent_items("u1")): [b"r2", b"r1"],
                      ("get", keys.profile("u1")): rk.encode_profile(fields, encode_vector(np.array([0.5, -1.0])))})
    store = RedisOnlineStore(settings.redis, client=FakeClient({}), raw_client=raw)
    state = store.user_state("u1", "v1", 2, 10, half_life_s=3600)
    assert raw.executed == [3]  # recent, profile and the deny-list entry: still one round trip
    assert state.erased_at is None
    assert state.recent == ["r2", "r1"] and state.purchased == {"p1"} and state.cart == ["c1"]
    assert list(state.interests) == ["b:acme", "c:shoes"]
    assert state.interests["b:acme"] == pytest.approx(4.0, rel=1e-2)  # one half-life since `it`
    assert state.vector.tolist() == [0.5, -1.0]
    assert store.user_state("u1", "v2", 2, 10, half_life_s=3600).vector is None
    assert store.user_state("nobody", "v1", 2, 10, half_life_s=3600).recent == []


def test_redis_item_signals_is_one_pipeline_round_trip():
    settings = load_settings("test", environ={})
    keys = rk.RedisKeys(settings.redis.key_prefix)
    text = FakeClient({("zrevrange", keys.co_views("a")): [("b", 3.0)], ("zrevrange", keys.co_views("b")): [],
                       ("zrevrange", keys.trending()): [("t", 9.0)]})
    store = RedisOnlineStore(settings.redis, client=text, raw_client=FakeClient({}))
    signals = store.item_signals(["a", "b", "a"], 5, 10)
    assert text.executed == [3] and signals.trending == [("t", 9.0)]
    assert signals.co_views == {"a": [("b", 3.0)], "b": []}
    assert store.item_signals([], 5, 0).co_views == {} and text.executed == [3]  # nothing asked, no round trip
    assert json.dumps(store.item_signals(["a"], 5, 0).trending) == "[]"


def test_category_cap_counts_each_category_in_ranking_order_and_skips_unknown():
    scores = np.array([7, 6, 5, 4, 3, 2, 1], dtype=np.float32)
    categories = np.array([0, 0, 1, UNKNOWN, 0, 1, UNKNOWN], dtype=np.int32)
    assert top_rows(scores, 5, categories=categories, cap=1).tolist() == [0, 2, 3, 6]
    assert top_rows(scores, 3, offset=2, categories=categories, cap=2).tolist() == [2, 3, 5]
