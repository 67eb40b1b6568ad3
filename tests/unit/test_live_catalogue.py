"""The live catalogue laid over a served model: availability, live attributes, new items' content profiles,
live item vectors and their hand-over to the next model; the item fold-in's maths."""

import numpy as np
import pytest

from recsys.als.foldin import FoldIn, ItemFoldIn
from recsys.config import load_settings
from recsys.serving.content_vector import content_rows, item_tokens, murmur3_32, term_index
from recsys.serving.live_model import overlay
from recsys.serving.recommender import RecommendationQuery, Recommender
from recsys.speed.adjustments import ModelContext, SpeedEvent, fold_items
from recsys.stores.attribute_arrays import SERVABLE, UNAVAILABLE, WITHDRAWN, ItemCatalogue
from recsys.stores.model_store import ContentProfiles
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test", environ={})
CFG, CONTENT = SETTINGS.serving, SETTINGS.content
TITLES = {"a1": "running shoe", "a2": "trail shoe", "a3": "walking shoe", "b1": "leather bag", "b2": "canvas bag",
          "b3": "tote bag", "c1": "sun hat", "c2": "wool hat", "x1": ""}


def content_model():
    """shop_model with content profiles made as the live catalogue makes them (same hashed space)."""
    base = shop_model()
    ids = list(TITLES)
    rows = [item_tokens(TITLES[i], base.catalogue.attributes.category_of(base.catalogue.row[i]), None, None,
                        CONTENT.min_token_length) for i in ids]
    return shop_model(content=ContentProfiles(ids, content_rows(rows, CONTENT.num_features)))


def served(model, online=None):
    return Recommender(lambda: model, online or FakeOnline(), CFG)


def ids(items):
    return [i.item_id for i in items]


def test_murmur3_is_the_reference_hash():
    assert murmur3_32(b"", 0) == 0
    assert murmur3_32(b"hello", 0) == 613153351
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747B28C) == 0x2FA826CD
    assert 0 <= term_index("category=shoes", 7) < 7


def test_patch_changes_only_the_fields_sent_and_availability_filters():
    catalogue = shop_model().catalogue
    live = catalogue.with_rows({"a1": {"available": False}, "b1": {"blocked": True}, "c1": {"price": 99.0},
                                "n1": {"category": "socks", "available": True}})
    attributes = live.attributes
    assert attributes.category_of(live.row["a1"]) == "shoes"  # a field left out keeps its value
    assert int(attributes.status[live.row["a1"]]) == UNAVAILABLE and int(attributes.status[live.row["b1"]]) == WITHDRAWN
    assert attributes.price[live.row["c1"]] == 99.0 and attributes.category_of(live.row["n1"]) == "socks"
    back = live.with_rows({"a1": {"available": True}, "b1": {"available": True}})
    assert int(back.attributes.status[back.row["a1"]]) == SERVABLE
    assert int(back.attributes.status[back.row["b1"]]) == WITHDRAWN  # still blocked: a patch of another field


def test_unavailable_items_leave_every_list_unless_asked_and_blocked_ones_always():
    model = overlay(shop_model(), {"a1": {"available": False}, "b2": {"blocked": True}}, {}, CONTENT)
    online = FakeOnline(trending=[("a1", 9.0), ("b2", 8.0), ("probe", 7.0), ("c1", 6.0)])
    rec = served(model, online)
    everything = ids(rec.recommend("u1", RecommendationQuery(9)).items)
    assert "a1" not in everything and "b2" not in everything
    asked = ids(rec.recommend("u1", RecommendationQuery(9, include_unavailable=True)).items)
    assert "a1" in asked and "b2" not in asked
    assert ids(rec.trending(2).items) == ["c1", "b1"]  # the probe id is in no catalogue; b1 tops up (popular)
    assert {"a1", "b2"}.isdisjoint(ids(rec.similar("a2", 8)))
    assert {"a1", "b2"}.isdisjoint(ids(rec.anonymous(["a2"], RecommendationQuery(9)).items))


def test_live_price_category_and_brand_filters():
    model = overlay(shop_model(), {"b3": {"price": 12.0, "brand": "acme"}, "c2": {"category": "shoes"}}, {}, CONTENT)
    rec = served(model)
    assert ids(rec.recommend("u1", RecommendationQuery(9, max_price=12, brand="acme")).items) == ["a1", "c1", "b3"]
    assert "c2" in ids(rec.recommend("u1", RecommendationQuery(9, category="shoes")).items)


def test_a_new_item_gets_a_content_profile_at_once_and_is_recommended_new_like_x():
    base = content_model()
    model = overlay(base, {"n1": {"item_id": "n1", "title": "mountain trail shoe", "category": "shoes"}}, {}, CONTENT)
    assert "n1" in model.all_index and model.all_index["n1"] >= model.n_items  # a new (content-only) item
    rec = served(model, FakeOnline(recent=["a2"]))
    items = rec.recommend("stranger", RecommendationQuery(9, category="shoes")).items  # no category cap
    new = next(i for i in items if i.item_id == "n1")
    assert "new, like a2" in new.reasons
    assert ids(rec.similar("n1", 3))[0] == "a2"  # content neighbours, the closest title first


def test_live_item_vectors_join_the_factors_and_the_next_model_supersedes_them():
    base = shop_model()
    vector = np.array([0.95, 0.05])
    model = overlay(base, {"n2": {"item_id": "n2", "category": "shoes"}}, {"n2": vector, "nolisting": vector}, CONTENT)
    assert model.item_ids[-1] == "n2" and "nolisting" not in model.all_index  # only catalogue items
    assert np.allclose(model.item_factors[model.item_index["n2"]], vector)
    assert "n2" in ids(served(model).recommend("u1", RecommendationQuery(4)).items)  # u1 likes shoes
    assert "n2" in ids(served(model).similar("a1", 3))  # factor neighbours
    trained = shop_model(version="v2", item_ids=[*base.item_ids, "n2"],
                         item_factors=np.vstack([base.item_factors, [[0.1, 0.2]]]),
                         popularity=np.append(base.popularity, 1.0))
    handed = overlay(trained, {"n2": {"item_id": "n2", "category": "shoes"}}, {"n2": vector}, CONTENT)
    assert np.allclose(handed.item_factors[handed.item_index["n2"]], [0.1, 0.2])  # the batch factors win
    assert handed.n_items == trained.n_items


def test_a_live_item_keeps_its_new_like_x_signal_until_a_batch_model_learns_it():
    """A handful of views give a live vector too small to compete on taste alone; its content still speaks."""
    row = {"n3": {"item_id": "n3", "title": "mountain trail shoe", "category": "shoes"}}
    model = overlay(content_model(), row, {"n3": np.array([0.01, 0.0])}, CONTENT)
    assert model.item_ids[-1] == "n3" and model.fresh_rows.tolist() == [model.item_index["n3"]]
    new = next(i for i in served(model, FakeOnline(recent=["a2"])).recommend(
        "stranger", RecommendationQuery(9, category="shoes", explain=True)).items if i.item_id == "n3")
    assert "new, like a2" in new.reasons and new.contributions["new_items"] > 0
    trained = shop_model(item_ids=[*model.item_ids], item_factors=model.item_factors, content=model.content,
                         popularity=np.append(model.popularity[:-1], 1.0))
    assert trained.fresh_rows.size == 0  # learned by the batch: no longer new


def test_a_live_item_alike_a_history_item_is_similar_to_it_in_the_list_as_under_similar_items():
    base = shop_model()
    a1 = base.item_factors[base.item_index["a1"]]
    model = overlay(base, {"n4": {"item_id": "n4", "category": "shoes"}}, {"n4": a1 * 0.05}, CONTENT)
    assert model.similar is None or "n4" not in model.similar.row  # in no batch list
    items = served(model, FakeOnline(recent=["a1"])).recommend(
        "stranger", RecommendationQuery(9, category="shoes", explain=True)).items
    live = next(i for i in items if i.item_id == "n4")
    assert live.contributions["item_knn"] > 0 and "similar to a1" in live.reasons
    assert "similar to n4" not in next(i for i in items if i.item_id == "a1").reasons  # only what was had explains


def test_item_fold_in_is_the_transpose_of_the_user_fold_in():
    users = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    fold = ItemFoldIn(users)
    y = fold.update(np.zeros(2), users[0], 1.0)
    assert 0 < float(users[0] @ y) <= 0.5  # towards its target, 1 / (1 + 1) of the way to 1
    assert users[0] @ y > users[2] @ y  # the item now resembles what its shopper likes
    assert fold.update(y, None, 1.0) is y and fold.update(y, np.zeros(2), 1.0) is y
    # Symmetry with the user fold-in: swapping roles gives the same step.
    items = FoldIn(["u0", "u1", "u2"], users).update(np.zeros(2), "u0", 1.0)
    assert np.allclose(items, y, atol=1e-6)


def test_fold_items_moves_only_listed_new_items_with_each_users_vector():
    context = ModelContext("v1", FoldIn(["a"], np.eye(2)[:1]), lambda _: None, ItemFoldIn(np.eye(2)))
    events = {"u": [SpeedEvent("u", "new", "view", 1.0), SpeedEvent("u", "a", "view", 2.0)],
              "cold": [SpeedEvent("cold", "new", "view", 3.0)]}
    moved = fold_items(events, {"u": np.array([1.0, 0.0]), "cold": None}, {}, {"new"}, context, {"view": 1.0})
    assert set(moved) == {"new"} and moved["new"][0] > 0 and moved["new"][1] == 0


def test_a_row_lists_an_item_the_catalogue_lacked_and_without_a_catalogue_nothing_is_withdrawn():
    base = shop_model()
    partial = shop_model(catalogue=ItemCatalogue(["a1", "b1"], base.catalogue.attributes.take(np.array([0, 3]))))
    assert "c1" not in ids(served(partial).recommend("u1", RecommendationQuery(9)).items)  # not listed
    listed = overlay(partial, {"c1": {"item_id": "c1", "category": "hats"}}, {}, CONTENT)
    assert "c1" in ids(served(listed).recommend("u1", RecommendationQuery(9)).items)
    bare = overlay(shop_model(catalogue=None), {"n1": {"item_id": "n1", "category": "hats", "title": "hat"}}, {},
                   CONTENT)
    assert len(ids(served(bare).recommend("u1", RecommendationQuery(9)).items)) == 9  # no catalogue: all served
