"""The repurchase policy and the item-kNN signal, in serving and in the offline evaluation (same ranking)."""

import pytest

from recsys.batch.served_evaluation import FULL_SCORING, SERVED, ServedEvaluator, best_baseline, signal_key
from recsys.config import load_settings
from recsys.serving.reasons import REASON_BUY_AGAIN
from recsys.serving.recommender import Recommender
from recsys.serving.results import RecommendationQuery
from recsys.stores.similar_items import SimilarItems
from recsys.stores.user_history import UserHistory
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test")
DAY = 86_400.0
NOW = 1_000 * DAY
# u1 bought a1 (shoes) yesterday and a2 two hundred days ago; looked at b1 without buying.
HISTORY = UserHistory.from_rows([("u1", "a1", NOW - DAY, NOW - DAY), ("u1", "a2", NOW - 200 * DAY, NOW - 200 * DAY),
                                 ("u1", "b1", NOW - 2 * DAY, None)])
SIMILAR = SimilarItems.from_pairs(["a1", "a1", "b1"], ["c1", "a3", "b2"], [0.9, 0.5, 0.8], [1, 2, 1])


def serving(policy: str, buy_again_k: int = 0, **merge):
    repurchase = SETTINGS.serving.repurchase.model_copy(update={"policy": policy, "window_days": 90,
                                                                "buy_again_k": buy_again_k})
    cfg = SETTINGS.serving.model_copy(update={"repurchase": repurchase, "max_per_category": 0,
                                              "merge": SETTINGS.serving.merge.model_copy(update=merge)})
    return SETTINGS.model_copy(update={"serving": cfg})


def recommend(settings, online=None, k=8):
    model = shop_model(history=HISTORY, similar=SIMILAR)
    recommender = Recommender(lambda: model, online or FakeOnline(), settings.serving, clock=lambda: NOW)
    return recommender.recommend("u1", RecommendationQuery(k=k))


def evaluated(settings, k=8):
    model = shop_model(history=HISTORY, similar=SIMILAR)
    settings = settings.model_copy(update={"evaluation": settings.evaluation.model_copy(update={"k": k})})
    return ServedEvaluator(model, {"u1": {"c1"}}, settings, NOW).rankings(settings.serving.merge)["u1"]


def ids(recs):
    return [item.item_id for item in recs.items]


def test_exclude_keeps_every_past_purchase_out_of_serving_and_evaluation():
    settings = serving("exclude")
    served = ids(recommend(settings))
    assert "a1" not in served and "a2" not in served
    assert "b1" in served  # only looked at: not owned
    assert evaluated(settings) == served


def test_a_purchase_the_stream_saw_is_excluded_too():
    served = ids(recommend(serving("window"), FakeOnline(purchased=["c2"])))
    assert "c2" not in served


def test_window_lets_old_purchases_back_labelled():
    settings = serving("window")
    recs = recommend(settings)
    assert "a1" not in ids(recs)  # bought yesterday
    again = next(item for item in recs.items if item.item_id == "a2")  # bought 200 days ago, window is 90
    assert again.reasons[0] == REASON_BUY_AGAIN
    assert evaluated(settings) == ids(recs)


def test_allow_shows_own_items_labelled_and_buy_again_lists_them_apart():
    recs = recommend(serving("allow"))
    assert {"a1", "a2"} <= set(ids(recs))
    assert all(item.reasons[0] == REASON_BUY_AGAIN for item in recs.items if item.item_id in {"a1", "a2"})
    apart = recommend(serving("exclude", buy_again_k=5))
    assert {item.item_id for item in apart.buy_again} == {"a1", "a2"}
    assert all(item.reasons == [REASON_BUY_AGAIN] for item in apart.buy_again)
    assert not {"a1", "a2"} & set(ids(apart))


def test_item_knn_ranks_the_neighbours_of_the_history_first_with_a_reason():
    settings = serving("exclude", factors=0.0, recent=0.0, popularity=0.0, new_items=0.0, item_knn=1.0)
    recs = recommend(settings, k=2)
    assert ids(recs) == ["c1", "b2"]  # a1 (0.9 x recency ~0.95) before b1's 0.8 x ~0.9; a3 after
    assert recs.items[0].reasons == ["similar to a1"]


def test_the_evaluation_reports_the_served_ranking_in_both_modes_and_each_signal_alone():
    model = shop_model(history=HISTORY, similar=SIMILAR)
    report = ServedEvaluator(model, {"u1": {"c1"}}, SETTINGS, NOW).report(SETTINGS.serving.merge)
    assert SETTINGS.serving.retrieval.mode == "two_stage"
    assert set(report) == {SERVED, FULL_SCORING, *(signal_key(s) for s in SETTINGS.evaluation.signals)}
    assert report[FULL_SCORING] == report[SERVED]  # the candidates hold every item of so small a shop
    assert report[signal_key("item_knn")]["ndcg"] == 1.0  # c1 is a1's nearest neighbour: first
    assert best_baseline(report)[1] == max(m["ndcg"] for n, m in report.items() if n not in (SERVED, FULL_SCORING))


def test_the_best_baseline_is_never_the_served_ranking_in_either_mode():
    report = {SERVED: {"ndcg": 0.3}, FULL_SCORING: {"ndcg": 0.4}, "item_knn": {"ndcg": 0.2}}
    assert best_baseline(report) == ("item_knn", 0.2)
    assert best_baseline({SERVED: {"ndcg": 0.3}, FULL_SCORING: {"ndcg": 0.4}}) == ("none", 0.0)
