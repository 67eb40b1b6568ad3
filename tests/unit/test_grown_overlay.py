"""A live catalogue change grows the served model without rebuilding it: the grown model must be the model a
full rebuild gives (same layout, lookups, arrays and rankings), keep the machine's shared factors, and never
change under a request still ranking with the previous one."""

import dataclasses

import numpy as np
import pytest

from recsys.demo.synthetic_model import make_model
from recsys.serving.content_vector import content_rows, item_tokens
from recsys.serving.live_model import overlay
from recsys.stores.attribute_arrays import AttributeArrays, ItemCatalogue
from recsys.stores.grown_index import GrownIndex
from recsys.stores.model_store import ContentProfiles, FactorModel
from recsys.stores.retrieval_index import Ragged
from recsys.stores.shared_model import is_shared, share_model
from recsys.stores.similar_items import SimilarItems
from tests.unit.test_candidates import QUERIES, SETTINGS, ranked, serving, shoppers

pytestmark = pytest.mark.unit
CONTENT = SETTINGS.content
N_ALS, N_NEW = 150, 30  # ALS items, then catalogue items with a content profile only (the batch new items)


def catalogue_model() -> FactorModel:
    """ALS items and batch new items, every catalogue item with a content profile."""
    synthetic = make_model("grow", 40, N_ALS + N_NEW, 8, 6, seed=4)
    rng = np.random.default_rng(4)
    ids, categories = synthetic.item_ids, synthetic.categories
    brands = [f"b{i % 9}" for i in range(len(ids))]
    catalogue = ItemCatalogue(ids, AttributeArrays.from_values(categories, brands, rng.uniform(1, 90, len(ids))))
    profiles = content_rows([item_tokens(f"item {i} {categories[n]}", categories[n], brands[n], None,
                                         CONTENT.min_token_length) for n, i in enumerate(ids)], CONTENT.num_features)
    # Batch neighbours, some of them batch new items or an item the catalogue gets only live ("fresh1").
    pairs = [(ids[i], ids[j]) for i in range(0, N_ALS, 5) for j in (i + 1, N_ALS + i % N_NEW)] + [("i2", "fresh1")]
    similar = SimilarItems.from_pairs([a for a, _ in pairs], [b for _, b in pairs], [0.5] * len(pairs),
                                      [1] * len(pairs))
    return FactorModel(version="grow", user_ids={u: i for i, u in enumerate(synthetic.user_ids)},
                       user_factors=synthetic.user_factors, item_ids=ids[:N_ALS],
                       item_factors=synthetic.item_factors[:N_ALS],
                       popularity=rng.pareto(1.5, N_ALS).astype(np.float32), catalogue=catalogue,
                       content=ContentProfiles(ids, profiles), similar=similar)


ROWS = {"fresh1": {"item_id": "fresh1", "title": "wool hat", "category": "c2", "brand": "new-brand", "price": 12.0},
        "fresh2": {"item_id": "fresh2", "title": "trail shoe", "category": "c9", "price": 30.0},
        "i3": {"price": 5.0}, "i160": {"available": False}}
VECTORS = {"fresh2": np.full(8, 0.02, dtype=np.float32),  # a live item with a vector
           "i155": np.full(8, -0.01, dtype=np.float32), "i170": np.full(8, 0.03, dtype=np.float32),  # batch new items
           "i4": np.zeros(8, dtype=np.float32), "nolisting": np.ones(8, dtype=np.float32)}  # known / not listed


def rebuilt(base: FactorModel, rows, vectors, grown: FactorModel) -> FactorModel:
    """The full rebuild the overlay replaces: a model built from scratch with the live items (its profiles
    taken from `grown`: their making is tested in test_live_catalogue)."""
    catalogue = ItemCatalogue(base.all_item_ids, base.attributes).with_rows(rows)
    live = sorted(i for i in vectors if i not in base.item_index and i in catalogue.row)
    full = dataclasses.replace(
        base, catalogue=catalogue, content=ContentProfiles(list(grown.content.item_ids), grown.content.matrix.tocsr()),
        item_ids=[*base.item_ids, *live],
        item_factors=np.vstack([base.item_factors, *[vectors[i][None] for i in live]]),
        popularity=np.concatenate([base.popularity, np.zeros(len(live), dtype=np.float32)]), live_items=len(live))

    def same_items(rows: np.ndarray) -> np.ndarray:  # the base's candidate lists, by item id
        return np.asarray([full.all_index[base.all_item_ids[r]] for r in rows], dtype=rows.dtype)

    lists = base.retrieval
    return dataclasses.replace(full, retrieval=dataclasses.replace(
        lists, by_category=Ragged(lists.by_category.indptr, same_items(lists.by_category.rows)),
        by_brand=Ragged(lists.by_brand.indptr, same_items(lists.by_brand.rows)), popular=same_items(lists.popular)))


def attributes_of(model: FactorModel) -> list[tuple]:
    a = model.attributes
    return [(a.category_of(r), a.brand_of(r), float(a.price[r]), a.is_servable(r, True), a.is_servable(r))
            for r in range(len(model.all_item_ids))]


@pytest.mark.parametrize("vectors", [VECTORS, {}], ids=["live vectors", "content only"])
def test_the_grown_model_is_the_model_a_full_rebuild_gives(tmp_path, vectors):
    base = share_model(catalogue_model(), serving().retrieval, tmp_path)
    grown = overlay(base, ROWS, vectors, CONTENT)
    full = rebuilt(base, ROWS, vectors, grown)
    assert list(grown.all_item_ids) == full.all_item_ids and list(grown.item_ids) == full.item_ids
    assert grown.live_items == full.live_items == (3 if vectors else 0)
    assert dict(grown.all_index) == full.all_index and dict(grown.item_index) == full.item_index
    assert dict(grown.content.row) == full.content.row
    for name in ("item_factors", "item_norms", "inverse_norms", "popularity", "popularity_score", "new_item_rows",
                 "fresh_rows"):
        assert np.allclose(getattr(grown, name), getattr(full, name)), name
    assert np.array_equal(grown.fresh_profiles.tocsr().toarray(), full.fresh_profiles.toarray())
    assert np.array_equal(grown.content.matrix.tocsr().toarray(), full.content.matrix.toarray())
    assert attributes_of(grown) == attributes_of(full)
    assert np.array_equal(grown.similar_rows, full.similar_rows) and (grown.similar_rows >= N_ALS).any()
    for cfg in (serving("full"), serving()):
        for shopper in shoppers(base, 8):
            for query in QUERIES:
                assert ranked(grown, cfg, shopper, query) == ranked(full, cfg, shopper, query)


def test_the_candidate_lists_name_the_same_items_after_batch_new_items_move(tmp_path):
    base = share_model(catalogue_model(), serving().retrieval, tmp_path)
    grown = overlay(base, ROWS, VECTORS, CONTENT)
    assert grown.all_index["i170"] < grown.n_items <= grown.all_index["i171"]  # moved into the factor rows
    for part in ("by_category", "by_brand"):
        before, after = getattr(base.retrieval, part), getattr(grown.retrieval, part)
        for code in range(len(before)):
            assert ([base.all_item_ids[r] for r in before.of(code)] ==
                    [grown.all_item_ids[r] for r in after.of(code)])
    assert [base.all_item_ids[r] for r in base.retrieval.popular] == [grown.all_item_ids[r]
                                                                      for r in grown.retrieval.popular]


def test_growing_keeps_the_shared_factors_and_never_changes_a_served_model(tmp_path):
    base = share_model(catalogue_model(), serving().retrieval, tmp_path)
    factors = np.array(base.item_factors)
    first = overlay(base, ROWS, VECTORS, CONTENT)
    second = overlay(base, ROWS, {**VECTORS, "fresh2": np.full(8, 0.5, dtype=np.float32)}, CONTENT)
    assert is_shared(first.item_factors) and is_shared(second.item_factors)
    assert np.array_equal(base.item_factors, factors) and len(base.item_factors) == N_ALS
    row = first.item_index["fresh2"]
    assert np.allclose(first.item_factors[row], 0.02) and np.allclose(second.item_factors[row], 0.5)


def test_an_unshared_model_grows_by_a_copy():
    base = catalogue_model()
    grown = overlay(base, ROWS, VECTORS, CONTENT)
    assert not is_shared(grown.item_factors)
    assert np.allclose(grown.item_factors[grown.item_index["i155"]], -0.01)


def test_a_grown_index_reads_through_to_its_base_and_moves_its_rows():
    index = GrownIndex({"a": 0, "b": 1, "t1": 2, "t2": 3}, {"t1": 2, "new": 4}, split=2, moved=np.array([2, 3]))
    assert (index["a"], index["b"], index["t1"], index["t2"], index["new"]) == (0, 1, 2, 3, 4)
    index = GrownIndex({"a": 0, "t1": 1, "t2": 2}, {"live": 1, "t2": 2}, split=1, moved=np.array([3, 2]))
    assert dict(index) == {"a": 0, "t1": 3, "t2": 2, "live": 1}
    assert len(index) == 4 and "live" in index and "gone" not in index
    assert index.get("gone", -1) == -1
    with pytest.raises(KeyError):
        index["gone"]
    with pytest.raises(TypeError):
        GrownIndex(index, {})

