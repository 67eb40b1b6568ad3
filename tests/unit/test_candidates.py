"""Two-stage serving: candidate sources, their registry, and agreement with full-catalogue scoring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys.config import load_settings
from recsys.demo.synthetic_model import make_model
from recsys.serving import candidates as cand
from recsys.serving.merge import Shopper, rank_items
from recsys.serving.recommender import Recommender
from recsys.serving.results import RecommendationQuery
from recsys.stores.attribute_arrays import AttributeArrays, ItemCatalogue
from recsys.stores.model_store import FactorModel
from recsys.stores.retrieval_index import HnswIndex, Ragged
from recsys.stores.shared_model import share_model
from recsys.stores.similar_items import SimilarItems
from tests.unit.serving_fakes import FakeOnline

pytestmark = pytest.mark.unit

SETTINGS = load_settings("test")
N_ITEMS = 3000


def serving(mode: str = "two_stage", **retrieval):
    cfg = SETTINGS.serving
    ann = cfg.retrieval.ann.model_copy(update=retrieval.pop("ann", {}))
    update = {"mode": mode, "ann": ann, **retrieval}
    return cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update=update)})


def shop(n_items: int = N_ITEMS, seed: int = 5) -> FactorModel:
    synthetic = make_model("cand", 40, n_items, 16, 20, seed=seed)
    rng = np.random.default_rng(seed)
    ids = synthetic.item_ids
    catalogue = ItemCatalogue(ids, AttributeArrays.from_values(
        synthetic.categories, [f"b{i % 30}" for i in range(n_items)], rng.uniform(1, 100, n_items).tolist()))
    pairs = [(ids[i], ids[j], float(rng.uniform(0.1, 1))) for i in range(0, n_items, 7)
             for j in rng.choice(n_items, 5, replace=False).tolist() if j != i]
    similar = SimilarItems.from_pairs([p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs],
                                      list(range(1, len(pairs) + 1)))
    return FactorModel(version="cand", user_ids={u: i for i, u in enumerate(synthetic.user_ids)},
                       user_factors=synthetic.user_factors, item_ids=ids, item_factors=synthetic.item_factors,
                       popularity=rng.pareto(1.5, n_items).astype(np.float32), catalogue=catalogue, similar=similar)


def shoppers(model: FactorModel, n: int = 30, seed: int = 9) -> list[Shopper]:
    rng = np.random.default_rng(seed)
    ids = model.item_ids
    out = []
    for user in range(n):
        recent = [ids[i] for i in rng.choice(len(ids), 4, replace=False)]
        out.append(Shopper(
            recent=recent, taste=model.user_factors[user] if user % 5 else None,
            interests={f"c:c{user % 20}": 3.0, f"b:b{user % 30}": 1.0},
            co_views={recent[0]: [(ids[i], float(c)) for c, i in enumerate(rng.choice(len(ids), 5), 1)]},
            trending=[(ids[i], float(10 - c)) for c, i in enumerate(rng.choice(len(ids), 8))],
            history=dict.fromkeys(recent, 1.0), owned={recent[-1]: 0.0}, user_id=f"u{user}"))
    return out


QUERIES = [RecommendationQuery(k=10), RecommendationQuery(k=10, offset=10, explain=True),
           RecommendationQuery(k=5, category="c3"), RecommendationQuery(k=5, brand="b7", max_price=60.0)]


def ranked(model, cfg, shopper, query):
    result = rank_items(model, cfg, SETTINGS.serving.merge, shopper, query, 1e9)
    return [(item.item_id, round(item.score, 4), tuple(item.reasons)) for item in result.items]


def test_two_stage_ranks_nearly_as_full_scoring_and_scores_every_item_alike():
    model = shop()
    two_stage, full = serving(), serving("full")
    overlap = []
    for shopper in shoppers(model):
        for query in QUERIES:
            two, every = ranked(model, two_stage, shopper, query), ranked(model, full, shopper, query)
            assert len(two) == len(every)
            same = {item: (score, why) for item, score, why in every}
            for item, score, why in two:  # an item both rank has the same score and reasons
                assert item not in same or same[item] == (score, why)
            overlap.append(len(set(same) & {item for item, _, _ in two}) / len(every))
    assert np.mean(overlap) >= 0.95


def test_uncapped_unfiltered_first_pages_of_known_shoppers_are_the_same():
    model = shop()
    two_stage, full = serving(), serving("full")
    two_stage, full = (cfg.model_copy(update={"max_per_category": 0}) for cfg in (two_stage, full))
    for shopper in shoppers(model):
        if shopper.taste is not None:
            assert ranked(model, two_stage, shopper, QUERIES[0]) == ranked(model, full, shopper, QUERIES[0])


def test_the_candidate_set_is_bounded_and_holds_every_source():
    model = shop()
    cfg = serving()
    shopper = shoppers(model)[1]
    rows = cand.candidates(model, cfg, SETTINGS.serving.merge, shopper, RecommendationQuery(k=10))
    assert 0 < rows.size < N_ITEMS * 2 // 3
    assert np.all(np.diff(rows) > 0)
    for item in [*shopper.recent, *(i for i, _ in shopper.trending), *shopper.owned]:
        assert model.all_index[item] in rows
    best = np.argsort(-(model.item_factors @ shopper.taste))[:20]
    assert set(best.tolist()) <= set(rows.tolist())


def test_the_hnsw_index_finds_nearly_what_exact_search_finds(tmp_path):
    approximate = serving(ann={"exact_below": 0})
    indexed = share_model(shop(), approximate.retrieval, tmp_path)  # a served model: the usearch index
    assert isinstance(indexed.retrieval.items, HnswIndex)
    exact, cfg = shop(), serving()
    overlap = []
    for shopper in shoppers(exact):
        a = {i for i, _, _ in ranked(indexed, approximate, shopper, QUERIES[0])}
        b = {i for i, _, _ in ranked(exact, cfg, shopper, QUERIES[0])}
        overlap.append(len(a & b) / len(b))
    assert np.mean(overlap) >= 0.95


def test_a_registered_source_adds_its_rows_and_an_unknown_source_is_refused():
    model = shop()

    @cand.candidate_source("test-last-item")
    def last_item(request):
        return [request.model.n_items - 1]

    try:
        cfg = serving(sources=["popular", "test-last-item"], popular=50)
        rows = cand.candidates(model, cfg, SETTINGS.serving.merge, Shopper(), RecommendationQuery(k=10))
        assert N_ITEMS - 1 in rows and rows.size <= 51
    finally:
        del cand.SOURCES["test-last-item"]
    with pytest.raises(ValueError, match="unknown candidate sources"):
        Recommender(lambda: model, FakeOnline(), serving(sources=["popular", "nope"]))


def test_a_narrow_filter_falls_back_to_full_scoring_rather_than_a_short_list():
    model = shop()
    cfg = serving(sources=["popular"], popular=5, filter_scan=0)
    shopper = shoppers(model)[1]
    query = RecommendationQuery(k=10, min_price=99.0)  # few items, hardly any among five popular ones
    assert ranked(model, cfg, shopper, query) == ranked(model, serving("full"), shopper, query)


def test_the_batch_top_n_table_becomes_each_users_candidate_rows():
    import pyarrow as pa

    from recsys.contracts.tables import ITEM_FACTORS, USER_CANDIDATES, USER_FACTORS
    from recsys.stores.model_store import model_from_tables

    tables = {USER_FACTORS.name: pa.table({"user_id": ["u2", "u1"], "factors": [[0.0, 1.0], [1.0, 0.0]]}),
              ITEM_FACTORS.name: pa.table({"item_id": ["c", "a", "b"], "factors": [[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]],
                                           "popularity": [1.0, 2.0, 3.0]}),
              USER_CANDIDATES.name: pa.table({"user_id": ["u1", "gone", "u2"],
                                              "items": [["b", "unknown", "a"], ["a"], ["c"]]})}
    model = model_from_tables("v", tables, 16)
    assert [model.item_ids[r] for r in model.user_candidates.of(model.user_ids["u1"]).tolist()] == ["b", "a"]
    assert [model.item_ids[r] for r in model.user_candidates.of(model.user_ids["u2"]).tolist()] == ["c"]
    request = cand.Request(model, Shopper(user_id="u1"), RecommendationQuery(k=2), serving(), SETTINGS.serving.merge,
                           None)
    assert sorted(cand.user_top_n(request).tolist()) == sorted(model.item_index[i] for i in ("a", "b"))


def test_a_batch_taste_is_not_searched_again_when_the_batch_top_n_lists_it():
    model = shop()
    cfg = serving(ann={"exact_below": 0})  # the HNSW index, ann_k 300, the batch lists of user_top_n 500
    top_n, ann_k = cfg.retrieval.user_top_n, cfg.retrieval.ann_k
    exact = np.argsort(-(model.user_factors @ model.item_factors.T), axis=1, kind="stable")[:, :top_n]
    listed = dataclasses.replace(model, user_candidates=Ragged.from_lists(list(exact)))
    batch, live = Shopper(taste=model.user_factors[3], user_id="u3"), Shopper(taste=model.user_factors[3] + 0.1,
                                                                               user_id="u3")

    def request(shopper, on=listed, retrieval=cfg):
        return cand.Request(on, shopper, RecommendationQuery(k=10), retrieval, SETTINGS.serving.merge,
                            cand.ensure_retrieval(on, retrieval.retrieval))

    assert cand.taste_ann(request(batch)) is None  # its best 500 are the batch list: no search
    assert set(exact[3][:ann_k]) <= set(cand.user_top_n(request(batch)).tolist())
    query = RecommendationQuery(k=10)
    assert ranked(listed, cfg, batch, query) == ranked(listed, serving("full"), batch, query)
    assert len(cand.taste_ann(request(live))) == ann_k  # a live vector drifts: searched
    assert len(cand.taste_ann(request(batch, on=model))) == ann_k  # no batch lists in this version: searched
    longer = serving(ann_k=top_n + 1, ann={"exact_below": 0})
    assert len(cand.taste_ann(request(batch, retrieval=longer))) == top_n + 1  # the batch list is too short
