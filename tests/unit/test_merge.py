"""The serving merge: filters, diversity cap, paging, exclusions, reasons, explanations, degradation."""

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from recsys.config import MergeWeights, load_settings
from recsys.serving.recommender import REASON_POPULAR, REASON_SEEN, REASON_TASTE, RecommendationQuery, Recommender
from recsys.stores.attribute_arrays import ItemCatalogue
from recsys.stores.model_store import ContentProfiles
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
CFG = load_settings("test", environ={}).serving
NONE = MergeWeights(**dict.fromkeys(MergeWeights.model_fields, 0.0))


def only(**weights):
    """Merge weights with every signal off but the given ones."""
    return NONE.model_copy(update=weights)


def recommend(online=None, user="u1", cfg=CFG, model=None, **query):
    model = model or shop_model()
    return Recommender(lambda: model, online or FakeOnline(), cfg).recommend(user, RecommendationQuery(**query))


def ids(recs):
    return [i.item_id for i in recs.items]


def reasons(recs):
    return {i.item_id: i.reasons for i in recs.items}


def test_query_checks_its_page_and_takes_any_iterable_to_exclude():
    assert RecommendationQuery(3, exclude=["a1", "a1"]).exclude == frozenset({"a1"})
    with pytest.raises(ValueError):
        RecommendationQuery(0)
    with pytest.raises(ValueError):
        RecommendationQuery(3, offset=-1)


def test_business_filters_on_catalogue_attributes():
    assert ids(recommend(k=9, category="bags")) == ["b2", "b1", "b3"]
    assert sorted(ids(recommend(k=9, brand="acme"))) == ["a1", "a2", "a3", "c1"]
    # An unknown price (b3) or an item of which nothing is known (x1) fails a price filter, nothing else does.
    assert sorted(ids(recommend(k=9, min_price=15))) == ["a2", "a3", "b1", "b2", "c2"]
    assert sorted(ids(recommend(k=9, max_price=12, brand="acme"))) == ["a1", "c1"]
    assert {"b3", "x1"} <= set(ids(recommend(k=9)))
    assert ids(recommend(k=9, category="toys")) == []


def test_category_cap_keeps_the_list_diverse_but_not_for_unknown_categories():
    capped = recommend(cfg=CFG.model_copy(update={"max_per_category": 1}), k=4)
    assert ids(capped) == ["a1", "c1", "x1", "b2"]
    uncapped = recommend(cfg=CFG.model_copy(update={"max_per_category": 0}), k=4)
    assert ids(uncapped) == ["a1", "a2", "a3", "c1"]


def test_a_version_tuned_with_its_own_cap_is_served_with_it():
    one = CFG.model_copy(update={"max_per_category": 1})
    assert ids(recommend(cfg=one, model=dataclasses.replace(shop_model(), max_per_category=0), k=4)) == [
        "a1", "a2", "a3", "c1"]  # the version's cap (none), not the configured 1
    assert ids(recommend(cfg=CFG.model_copy(update={"max_per_category": 0}),
                         model=dataclasses.replace(shop_model(), max_per_category=1), k=4)) == ["a1", "c1", "x1", "b2"]


def test_offset_pages_through_the_same_ranking():
    full = ids(recommend(k=9))
    assert ids(recommend(k=3, offset=3)) == full[3:6]
    assert ids(recommend(k=3, offset=8)) == full[8:]
    assert ids(recommend(k=3, offset=9)) == []


def test_purchased_and_excluded_items_are_never_returned():
    recs = recommend(FakeOnline(purchased={"a1"}), k=9, exclude={"a2"})
    assert "a1" not in ids(recs) and "a2" not in ids(recs) and ids(recs)[0] == "a3"


def test_taste_and_recent_items_explain_themselves():
    assert recommend(k=1).items[0].reasons[0] == REASON_TASTE
    recs = recommend(FakeOnline(recent=["a2"]), user="stranger", k=3)
    assert ids(recs)[0] == "a1" and "because you viewed a2" in reasons(recs)["a1"]
    assert REASON_SEEN in reasons(recs)["a2"] and "because you viewed a2" not in reasons(recs)["a2"]


def test_session_interests_boost_their_category_or_brand():
    by_category = recommend(FakeOnline(interests={"c:hats": 20.0}), k=2,
                            weights=only(factors=0.1, interests=1.0))
    assert ids(by_category) == ["c1", "c2"]
    assert by_category.items[0].reasons[0] == "matches your interest in hats"
    by_brand = recommend(FakeOnline(interests={"b:cap-co": 20.0}), k=1, weights=only(factors=0.1, interests=1.0))
    assert ids(by_brand) == ["c2"] and by_brand.items[0].reasons[0] == "matches your interest in cap-co"
    faint = recommend(FakeOnline(interests={"c:hats": 0.1}), k=1, weights=only(factors=0.1, interests=1.0))
    assert ids(faint) == ["a1"]  # a faint interest does not outweigh the taste


def test_co_views_of_recent_items_pull_in_items_viewed_together():
    online = FakeOnline(recent=["a1"], co_views={"a1": [("b3", 5.0), ("b1", 1.0)]})
    recs = recommend(online, user="stranger", k=9)
    assert ids(recs).index("b3") < ids(recs).index("b2")  # b3 is otherwise the least relevant bag
    assert reasons(recs)["b3"][0] == "viewed together with a1"


def test_co_views_from_several_recent_items_add_up_and_the_strongest_explains():
    online = FakeOnline(recent=["a1", "a2"], co_views={"a1": [("b3", 2.0), ("b2", 3.0), ("zz", 9.0)],
                                                       "a2": [("b3", 2.5), ("b2", 3.0), ("b1", 0.0)]})
    recs = recommend(online, user="stranger", k=2, weights=only(co_views=1.0), explain=True)
    assert ids(recs) == ["b2", "b3"]  # 3 + 3 before 2 + 2.5; b1 (no count) and zz (unknown) add nothing
    assert [i.contributions["co_views"] for i in recs.items] == [1.0, 0.75]
    assert reasons(recs)["b2"] == ["viewed together with a1"]  # a tie goes to the first source
    assert reasons(recs)["b3"] == ["viewed together with a2"]  # 2.5 against 2


def test_trending_items_say_where_they_trend():
    online = FakeOnline(trending=[("c2", 50.0), ("x1", 25.0)])
    recs = recommend(online, k=2, weights=only(trending=1.0, popularity=0.1))
    assert ids(recs) == ["c2", "x1"]
    assert reasons(recs) == {"c2": ["trending in hats"], "x1": ["trending"]}
    assert "trending in hats" in reasons(recommend(online, k=9))["c2"]  # with the default weights too


def test_cold_user_gets_popular_items():
    recs = recommend(user="stranger", k=2)
    assert ids(recs) == ["b1", "b2"] and recs.items[0].reasons == [REASON_POPULAR]


def test_new_items_join_with_their_catalogue_attributes():
    ids_ = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "x1", "n1"]
    rows = np.eye(2, dtype=np.float32)[[0, 0, 0, 1, 1, 1, 0, 0, 0, 1]]
    catalogue = ItemCatalogue.from_rows({"b1": ("bags", "bolt", 40.0), "n1": ("bags", "bolt", 45.0)})
    model = shop_model(content=ContentProfiles(ids_, sparse.csr_matrix(rows)), catalogue=catalogue)
    online = FakeOnline(recent=["b1"])
    recs = recommend(online, model=model, user="stranger", k=10, category="bags")
    assert ids(recs) == ["b1", "n1"] and reasons(recs)["n1"] == ["new, like b1"]
    assert "n1" not in ids(recommend(online, model=model, user="stranger", k=10, category="shoes"))


def test_explain_gives_contributions_that_sum_to_the_score():
    online = FakeOnline(recent=["a2"], interests={"c:hats": 3.0}, co_views={"a2": [("b3", 2.0)]},
                        trending=[("b1", 9.0), ("c2", 3.0)])
    explained = recommend(online, k=9, explain=True)
    for item in explained.items:
        assert item.contributions and sum(item.contributions.values()) == pytest.approx(item.score, abs=1e-5)
        assert all(part != 0 for part in item.contributions.values())
    assert set(explained.items[0].contributions) >= {"factors", "recent", "popularity"}
    assert {"interests", "trending"} <= set(next(i for i in explained.items if i.item_id == "c2").contributions)
    assert all(i.contributions is None for i in recommend(online, k=9).items)


def test_weights_override_changes_the_ranking():
    assert ids(recommend(k=1)) == ["a1"]
    assert ids(recommend(k=1, weights=only(popularity=1.0))) == ["b1"]


def test_redis_down_gives_batch_only_results_marked_degraded():
    down = FakeOnline(recent=["b1"], down=True, trending=[("c2", 50.0)])
    recs = recommend(down, k=2)
    assert recs.degraded and ids(recs) == ["a1", "a2"] and down.calls == ["user_state"]
    # The second read failing drops the first one's state too: the stranger is a cold start again.
    half = FakeOnline(recent=["a1"], interests={"c:hats": 9.0}, signals_down=True)
    recs = recommend(half, user="stranger", k=2)
    assert recs.degraded and ids(recs) == ["b1", "b2"] and recs.items[0].reasons == [REASON_POPULAR]


def test_one_round_trip_for_the_user_and_one_for_item_signals_at_most():
    online = FakeOnline(recent=["a1", "a2"], co_views={"a1": [("b3", 1.0)]})
    recommend(online, k=5)
    assert online.calls == ["user_state", "item_signals"]
    quiet = FakeOnline(recent=["a1"])
    recommend(quiet, k=5, weights=only(factors=1.0))
    assert quiet.calls == ["user_state"]


def test_no_model_gives_an_empty_list_without_a_version():
    recs = Recommender(lambda: None, FakeOnline(), CFG).recommend("u1", RecommendationQuery(5))
    assert recs.items == [] and recs.model_version is None and not recs.degraded


def test_a_live_vector_of_another_version_is_ignored():
    online = FakeOnline(vector=[0.0, 1.0], version="v0")
    assert ids(recommend(online, k=1)) == ["a1"]
    assert ids(recommend(FakeOnline(vector=[0.0, 1.0]), k=1)) == ["b1"]


def test_a_category_filter_lifts_the_category_cap():
    one = recommend(cfg=CFG.model_copy(update={"max_per_category": 1}), k=3, category="shoes")
    assert ids(one) == ["a1", "a2", "a3"]
