"""Anonymous visitors, similar items and trending lists."""

import numpy as np
import pytest
from scipy import sparse

from recsys.als.foldin import FoldIn
from recsys.config import load_settings
from recsys.serving.recommender import REASON_POPULAR, RecommendationQuery, Recommender, UnknownItemError
from recsys.stores.model_store import ContentProfiles
from recsys.stores.similar_items import SimilarItems
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
CFG = load_settings("test", environ={}).serving


def recommender(online=None, model=None, cfg=CFG):
    model = model or shop_model()
    return Recommender(lambda: model, online or FakeOnline(), cfg)


def ids(items):
    return [i.item_id for i in items]


def test_anonymous_visitor_gets_items_like_those_seen_but_never_them():
    recs = recommender().anonymous(["b1"], RecommendationQuery(3))
    assert recs.user_id is None and recs.model_version == "v1" and not recs.degraded
    assert "b1" not in ids(recs.items) and set(ids(recs.items)[:2]) == {"b2", "b3"}
    assert "because you viewed b1" in recs.items[0].reasons


def test_anonymous_vector_is_the_speed_layers_fold_in():
    model = shop_model()
    fold = FoldIn(model.item_ids, model.item_factors)
    expected = fold.update(fold.update(np.zeros(2), "a1", CFG.anonymous_event_strength), "b1",
                           CFG.anonymous_event_strength)
    assert np.allclose(model.fold_in.update(model.fold_in.update(np.zeros(2), "a1", 1.0), "b1", 1.0), expected)
    only_taste = CFG.merge.model_copy(update={"recent": 0.0, "popularity": 0.0})
    recs = recommender(model=model).anonymous(["a1", "b1"], RecommendationQuery(7, explain=True, weights=only_taste))
    scores = model.item_factors @ expected.astype(np.float32)
    ranked = [model.item_ids[i] for i in np.argsort(-scores, kind="stable") if model.item_ids[i] not in {"a1", "b1"}]
    assert ids(recs.items) == ranked[:7]


def test_anonymous_visitor_with_nothing_known_is_a_cold_start_with_filters_and_live_signals():
    online = FakeOnline(co_views={"zz": [("c1", 3.0)]})
    recs = recommender(online).anonymous(["zz"], RecommendationQuery(2, category="hats"))
    assert ids(recs.items) == ["c1", "c2"] and recs.items[0].reasons[0] == "viewed together with zz"
    assert recommender().anonymous([], RecommendationQuery(1)).items[0].reasons == [REASON_POPULAR]
    down = recommender(FakeOnline(down=True)).anonymous(["a1"], RecommendationQuery(2))
    assert down.degraded and ids(down.items) == ["a2", "a3"]


def similar_model():
    pairs = SimilarItems.from_pairs(["a1", "a1", "a1", "b1"], ["a2", "a3", "c1", "b2"], [0.9, 0.5, 0.2, 0.8],
                                    [1, 2, 3, 1])
    return shop_model(similar=pairs)


def test_similar_blends_batch_neighbours_with_live_co_views():
    online = FakeOnline(co_views={"a1": [("b1", 10.0), ("a3", 10.0), ("zz", 99.0)]})
    items = recommender(online, similar_model()).similar("a1", 3)
    # a2: 1 x 0.9; a3: 0.5 + 0.5 x 1; b1: 0.5 x 1 (co-views only); zz is not in the catalogue.
    assert ids(items) == ["a3", "a2", "b1"]
    assert items[0].score == pytest.approx(1.0)
    assert items[0].reasons == ["similar to a1", "viewed together with a1"]  # a tie keeps the batch first
    assert items[1].reasons == ["similar to a1"] and items[2].reasons == ["viewed together with a1"]
    assert ids(recommender(FakeOnline(down=True), similar_model()).similar("a1", 2)) == ["a2", "a3"]


def test_similar_falls_back_to_factors_or_content_and_rejects_unknown_items():
    assert ids(recommender(model=similar_model()).similar("a2", 2)) == ["a1", "a3"]  # no batch list: factors
    rows = np.array([[1, 0], [1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    model = shop_model(content=ContentProfiles(["a1", "a2", "b1", "n1"], sparse.csr_matrix(rows)))
    items = recommender(model=model).similar("n1", 2)
    assert ids(items) == ["a1", "a2"] and items[0].reasons == ["similar to n1"]
    with pytest.raises(UnknownItemError):
        recommender().similar("nope", 3)
    assert issubclass(UnknownItemError, LookupError)


def test_trending_filters_by_category_through_the_catalogue():
    online = FakeOnline(trending=[("b1", 9.0), ("a1", 8.0), ("c1", 7.0), ("x1", 6.0), ("a2", 5.0)])
    shoes = recommender(online).trending(5, category="shoes")
    assert not shoes.degraded and ids(shoes.items) == ["a1", "a2", "a3"]  # topped up with the popular shoes
    assert shoes.items[0].reasons == ["trending in shoes"] and shoes.items[0].score == 8.0
    assert shoes.items[2].reasons == [REASON_POPULAR]
    top = recommender(online).trending(4)
    assert ids(top.items) == ["b1", "a1", "c1", "x1"] and top.items[3].reasons == ["trending"]


def test_trending_falls_back_to_popularity_when_redis_is_down():
    down = recommender(FakeOnline(down=True)).trending(2, category="shoes")
    assert down.degraded and ids(down.items) == ["a1", "a2"] and down.items[0].reasons == [REASON_POPULAR]
    assert ids(recommender(FakeOnline(down=True)).trending(1).items) == ["b1"]
    assert Recommender(lambda: None, FakeOnline(down=True), CFG).trending(3).items == []
