from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import sparse

from recsys.config import load_settings
from recsys.contracts import model_version as mv
from recsys.serving.recommender import (
    REASON_POPULAR,
    REASON_SEEN,
    REASON_SEGMENT,
    REASON_TASTE,
    RecommendationQuery,
    Recommender,
)
from recsys.stores.model_store import ContentProfiles, FactorModel
from tests.unit.serving_fakes import FakeOnline

pytestmark = pytest.mark.unit
CFG = load_settings("test", environ={}).serving


def model() -> FactorModel:
    # Two clusters of items: a* along the first axis, b* along the second.
    items = np.array([[1, 0], [0.9, 0.1], [0.8, 0.0], [0, 1], [0.1, 0.9], [0.0, 0.7]], dtype=np.float32)
    return FactorModel(version="v1", user_ids={"ua": 0}, user_factors=np.array([[1, 0]], dtype=np.float32),
                       item_ids=["a1", "a2", "a3", "b1", "b2", "b3"], item_factors=items,
                       popularity=np.array([1, 2, 3, 30, 20, 10], dtype=np.float32))


def test_known_user_ranked_by_factors_with_purchases_excluded():
    rec = Recommender(model, FakeOnline(purchased={"a1"}), CFG).recommend("ua", RecommendationQuery(3))
    assert [i.item_id for i in rec.items] == ["a2", "a3", "b2"]
    assert rec.model_version == "v1" and not rec.degraded
    assert REASON_TASTE in rec.items[0].reasons


def test_an_erased_users_batch_factors_are_not_used_until_a_model_trained_after_the_erasure():
    trained = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    erased = FakeOnline(erased_at=trained + 3600)  # forgotten an hour after this model was trained
    old = replace(model(), trained_at=trained)
    rec = Recommender(lambda: old, erased, CFG).recommend("ua", RecommendationQuery(3))
    assert [i.item_id for i in rec.items] == ["b1", "b2", "b3"]  # cold start: popularity, not their taste
    assert all(REASON_TASTE not in i.reasons for i in rec.items)
    newer = replace(model(), trained_at=trained + 7200)  # trained without their erased events
    assert [i.item_id for i in Recommender(lambda: newer, erased, CFG).recommend("ua", RecommendationQuery(3)).items
            ] == ["a1", "a2", "a3"]


def test_folded_in_vector_supersedes_the_batch_vector():
    # ua's batch vector points at the a* items; the stream has moved it towards the b* items.
    rec = Recommender(model, FakeOnline(vector=np.array([0.0, 1.0])), CFG).recommend("ua", RecommendationQuery(2))
    assert [i.item_id for i in rec.items] == ["b1", "b2"]
    assert REASON_TASTE in rec.items[0].reasons


def test_recent_items_pull_related_items_up_and_explain_why():
    before = Recommender(model, FakeOnline(), CFG).recommend("newcomer", RecommendationQuery(2))
    assert [i.item_id for i in before.items] == ["b1", "b2"]  # popularity for an unknown user
    assert before.items[0].reasons == [REASON_POPULAR]
    after = Recommender(model, FakeOnline(recent=["a3", "a2"]), CFG).recommend("newcomer", RecommendationQuery(2))
    assert after.items[0].item_id == "a1"
    assert any(r.startswith("because you viewed a") for r in after.items[0].reasons)


def test_a_recent_item_is_not_explained_by_itself():
    rec = Recommender(model, FakeOnline(recent=["a1", "a2"]), CFG).recommend("ua", RecommendationQuery(3))
    reasons = {i.item_id: i.reasons for i in rec.items}
    assert "because you viewed a1" not in reasons["a1"] and REASON_SEEN in reasons["a1"]
    assert "because you viewed a2" in reasons["a1"]
    assert "because you viewed a1" in reasons["a3"]


def test_redis_down_degrades_instead_of_failing():
    rec = Recommender(model, FakeOnline(down=True), CFG).recommend("ua", RecommendationQuery(2))
    assert rec.degraded and [i.item_id for i in rec.items] == ["a1", "a2"]


def test_no_model_gives_empty_list():
    rec = Recommender(lambda: None, FakeOnline(), CFG).recommend("ua", RecommendationQuery(5))
    assert rec.items == [] and rec.model_version is None


def test_k_larger_than_catalogue_and_everything_bought():
    assert len(Recommender(model, FakeOnline(), CFG).recommend("ua", RecommendationQuery(50)).items) == 6
    everything = FakeOnline(purchased={"a1", "a2", "a3", "b1", "b2", "b3"})
    assert Recommender(model, everything, CFG).recommend("ua", RecommendationQuery(5)).items == []


def test_current_version_is_latest_published():
    t = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    rows = [{"model_version": "a", "status": mv.PUBLISHED, "published_at": t[1]},
            {"model_version": "b", "status": mv.PUBLISHED, "published_at": t[0]},
            {"model_version": "c", "status": mv.REJECTED, "published_at": t[2]},
            {"model_version": "d", "status": mv.CANDIDATE, "published_at": None}]
    assert mv.current_version(rows) == "a"
    assert mv.current_version(rows[2:]) is None


def test_new_user_gets_what_their_segment_likes_first():
    segmented = replace(model(), segment_popular={"age_band=18-24,gender=f": ["a3", "a1"], "gender=m": ["b3"],
                                                  "*": ["b1", "b2"]})
    rec = Recommender(lambda: segmented, FakeOnline(), CFG, ["age_band", "gender", "location"])
    young = rec.recommend("new", RecommendationQuery(3, attributes={"age_band": "18-24", "gender": "F"}))
    assert [i.item_id for i in young.items] == ["a3", "a1", "b1"]
    assert [i.reasons for i in young.items] == [[REASON_SEGMENT], [REASON_SEGMENT], [REASON_POPULAR]]
    # falls back to a coarser segment
    men = rec.recommend("new", RecommendationQuery(2, attributes={"gender": "m", "location": "nowhere"}))
    assert [i.item_id for i in men.items] == ["b3", "b1"]
    anonymous = rec.recommend("new", RecommendationQuery(2))
    assert [i.item_id for i in anonymous.items] == ["b1", "b2"]  # overall popularity
    # attributes never override a known user's taste
    known = rec.recommend("ua", RecommendationQuery(1, attributes={"gender": "m"}))
    assert known.items[0].item_id.startswith("a")


def test_items_without_factors_are_ranked_by_content_similarity_to_recent_views():
    # Profiles: a* and the new "a-new" share feature 0, b* and "b-new" feature 1.
    ids = ["a-new", "a1", "a2", "a3", "b-new", "b1", "b2", "b3"]
    rows = np.array([[1, 0], [1, 0], [0.9, 0.1], [1, 0], [0, 1], [0, 1], [0.1, 0.9], [0, 1]], dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    with_content = replace(model(), content=ContentProfiles(ids, sparse.csr_matrix(rows)))
    assert sorted(with_content.content.item_ids[r] for r in with_content.new_item_rows) == ["a-new", "b-new"]
    rec = Recommender(lambda: with_content, FakeOnline(recent=["b2", "b1"]), CFG)
    items = {i.item_id: i for i in rec.recommend("stranger", RecommendationQuery(6)).items}
    assert "b-new" in items and "a-new" not in items
    assert items["b-new"].reasons == ["new, like b1"]
    cold = Recommender(lambda: with_content, FakeOnline(), CFG).recommend("stranger", RecommendationQuery(6))
    assert cold.items[0].item_id != "b-new"
    bought = Recommender(lambda: with_content, FakeOnline(recent=["b1"], purchased=["b-new"]), CFG)
    assert "b-new" not in {i.item_id for i in bought.recommend("stranger", RecommendationQuery(6)).items}
