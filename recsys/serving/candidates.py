"""Two-stage serving, stage one: a bounded set of candidate rows from pluggable sources.

Each source is a function of one request that names rows of the model's all_item_ids worth ranking; the
union of the sources listed in serving.retrieval.sources is what the merge (recsys.serving.merge) scores.
Between them the sources cover every row a signal can raise: the best items of the shopper's taste (batch
top-N, the ANN index for folded-in vectors), of their recent items (ANN over the recent mean, batch
neighbours, live co-views), of their live interests (per category and brand, precomputed per version),
the live lists (trending, segment favourites), new items like what they saw, the most popular items, what
they own (buy again) and the top items of a filter asked for. A new source (live item vectors, a session
model) registers itself with `@candidate_source("name")` and is listed in the config: nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from recsys.config import MergeWeights, ServingConfig
from recsys.contracts.redis_keys import INTEREST_BRAND, INTEREST_CATEGORY, split_interest
from recsys.serving.results import RecommendationQuery
from recsys.serving.shopper import Shopper
from recsys.stores.model_store import NORM_FLOOR, FactorModel
from recsys.stores.retrieval_index import RetrievalIndex
from recsys.stores.shared_model import ensure_retrieval


@dataclass(frozen=True)
class Request:
    """What a candidate source sees of one request."""

    model: FactorModel
    shopper: Shopper
    query: RecommendationQuery
    cfg: ServingConfig
    weights: MergeWeights
    index: RetrievalIndex


Rows = np.ndarray | Iterable[int] | None
CandidateSource = Callable[[Request], Rows]
SOURCES: dict[str, CandidateSource] = {}


def candidate_source(name: str) -> Callable[[CandidateSource], CandidateSource]:
    """Register a source under `name` (the name serving.retrieval.sources lists)."""
    def register(source: CandidateSource) -> CandidateSource:
        SOURCES[name] = source
        return source
    return register


def unknown_sources(names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(SOURCES))


def candidates(model: FactorModel, cfg: ServingConfig, weights: MergeWeights, shopper: Shopper,
               query: RecommendationQuery) -> np.ndarray:
    """Sorted distinct rows of all_item_ids named by the configured sources."""
    request = Request(model, shopper, query, cfg, weights, ensure_retrieval(model, cfg.retrieval))
    parts = [np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64).ravel()
             for rows in (SOURCES[name](request) for name in cfg.retrieval.sources) if rows is not None]
    rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    if rows.size:  # np.unique's hash table is slower than a sort on a thousand or so rows
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    return rows[(rows >= 0) & (rows < len(model.all_item_ids))]


def _rows_of(model: FactorModel, items: Iterable[str]) -> list[int]:
    return [row for row in (model.all_index.get(i) for i in items) if row is not None]


_trending_memo: tuple[FactorModel, list, np.ndarray, np.ndarray] | None = None


def trending_rows(model: FactorModel, trending: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the trending items `model` knows with a positive score, in the view's order.

    Workers reuse one trending view for serving.trending_cache_s, so its rows are kept for the last
    (model, view) pair: the same 200 lookups are not repeated on every request."""
    global _trending_memo
    memo = _trending_memo
    if memo is not None and memo[0] is model and memo[1] is trending:
        return memo[2], memo[3]
    found = [(row, score) for row, score in ((model.all_index.get(item), score) for item, score in trending)
             if row is not None and score > 0]
    rows = np.fromiter((row for row, _ in found), dtype=np.int64, count=len(found))
    scores = np.fromiter((score for _, score in found), dtype=np.float32, count=len(found))
    _trending_memo = (model, trending, rows, scores)
    return rows, scores


@dataclass(frozen=True)
class CoViewPairs:
    """The live co-views the model can rank, one entry per (recent item, co-viewed item) pair."""

    rows: np.ndarray  # int64 rows of all_item_ids
    counts: np.ndarray  # float64 co-view counts, all positive
    sources: list[str]  # the recent item each pair was co-viewed with


def co_view_pairs(model: FactorModel, shopper: Shopper) -> CoViewPairs:
    """The shopper's co-views as rows: resolved once per request, shared by the candidates and the merge."""
    key = ("co_views", id(model))
    found = shopper.memo.get(key)
    if found is None:
        lookup, rows, counts, sources = model.all_index.get, [], [], []
        for source, partners in shopper.co_views.items():
            for other, count in partners:
                row = lookup(other)
                if row is not None and count > 0:
                    rows.append(row)
                    counts.append(count)
                    sources.append(source)
        found = shopper.memo[key] = CoViewPairs(np.asarray(rows, dtype=np.int64),
                                                np.asarray(counts, dtype=np.float64), sources)
    return found


def history_in(shopper: Shopper, lookup: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(lookup's code, recency weight) of each history item with a positive weight that `lookup` holds: found once
    per request and vocabulary, with one lookup per item (the candidates and the merge both need them)."""
    key = ("history", id(lookup))
    found = shopper.memo.get(key)
    if found is None:
        get, codes, weights = lookup.get, [], []
        for item, weight in shopper.history.items():
            code = get(item) if weight > 0 else None
            if code is not None:
                codes.append(code)
                weights.append(weight)
        found = shopper.memo[key] = (np.asarray(codes, dtype=np.int64), np.asarray(weights, dtype=np.float32))
    return found


def unit_factors(model: FactorModel, rows: np.ndarray) -> np.ndarray:
    """The rows' factor vectors scaled to length 1 (a zero vector stays zero)."""
    return model.item_factors[rows] / np.maximum(model.item_norms[rows], NORM_FLOOR)[:, None]


def recent_unit_mean(model: FactorModel, recent_rows: np.ndarray) -> np.ndarray:
    """The mean of the recent items' unit factor vectors: what the "recent" signal compares items with."""
    return unit_factors(model, recent_rows).mean(axis=0).astype(np.float32)


def als_rows(model: FactorModel, items: Iterable[str]) -> np.ndarray:
    """Rows of the items that have factors, first occurrence order."""
    get = model.item_index.get
    known = dict.fromkeys(row for row in map(get, items) if row is not None)
    return np.fromiter(known, dtype=np.int64, count=len(known))


def content_matches(model: FactorModel, recent: list[str], min_similarity: float):
    """Fresh items (newer than the batch model: new and live items) whose content is like the recent items':
    (positions into model.fresh_rows, cosine, the seen items with content, their profiles); None when there is
    nothing to compare."""
    content = model.content
    if content is None or model.fresh_rows.size == 0:
        return None
    seen = [i for i in dict.fromkeys(recent) if i in content.row]
    if not seen:
        return None
    matrix = content.matrix[[content.row[i] for i in seen]]
    profile = np.asarray(matrix.sum(axis=0)).ravel()
    norm = float(np.linalg.norm(profile))
    if norm == 0:
        return None
    cosine = np.asarray(model.fresh_profiles @ profile).ravel() / norm
    keep = np.flatnonzero((cosine >= min_similarity) & (cosine > 0))
    return keep, cosine, seen, matrix


@candidate_source("user_top_n")
def user_top_n(request: Request) -> Rows:
    """The batch layer's per-user top-N of this version (USER_CANDIDATES)."""
    listed = _batch_list(request)
    return None if listed is None else listed[1]


def _batch_list(request: Request) -> tuple[int, np.ndarray] | None:
    """(the user's row of user_ids, their batch top-N rows) when this version has a list for the user."""
    model, user = request.model, request.shopper.user_id
    row = None if model.user_candidates is None or user is None else model.user_ids.get(user)
    return None if row is None else (row, model.user_candidates.of(row))


@candidate_source("taste_ann")
def taste_ann(request: Request) -> Rows:
    """Nearest items to the shopper's taste vector: a live folded-in vector drifts from any batch list. A taste that
    is still the user's batch vector needs no search when user_top_n is on: the batch wrote that vector's best
    items already, exactly and at least as many (a shop's returning shoppers, until their first event)."""
    taste = request.shopper.taste
    if request.weights.factors <= 0 or taste is None or _batch_listed(request, taste):
        return None
    return request.index.items.search(np.asarray(taste, dtype=np.float32), request.cfg.retrieval.ann_k)


def _batch_listed(request: Request, taste: np.ndarray) -> bool:
    """The taste is the user's batch vector, and the user_top_n source gives at least ann_k of its best items."""
    retrieval = request.cfg.retrieval
    listed = _batch_list(request) if "user_top_n" in retrieval.sources else None
    return (listed is not None and len(listed[1]) >= retrieval.ann_k
            and np.array_equal(taste, request.model.user_factors[listed[0]]))


@candidate_source("recent_ann")
def recent_ann(request: Request) -> Rows:
    """Nearest items to the mean of the recent items (the "recent" signal's direction)."""
    rows = als_rows(request.model, request.shopper.recent)
    if request.weights.recent <= 0 or rows.size == 0:
        return None
    return request.index.items.search(recent_unit_mean(request.model, rows), request.cfg.retrieval.recent_k,
                                      cosine=True)


@candidate_source("neighbours")
def neighbours(request: Request) -> Rows:
    """The recent items, the batch similar items of everything in the history, and live co-views."""
    model, shopper = request.model, request.shopper
    rows = np.concatenate([np.asarray(_rows_of(model, shopper.recent), dtype=np.int64),
                           co_view_pairs(model, shopper).rows])
    similar = model.similar
    if similar is None or not shopper.history:
        return rows
    codes = history_in(shopper, similar.row)[0]
    if codes.size == 0:
        return rows
    lists = [similar.neighbours[similar.indptr[c]:similar.indptr[c + 1]] for c in codes.tolist()]
    return np.concatenate([rows, model.similar_rows[np.concatenate(lists)]])


@candidate_source("interests")
def interests(request: Request) -> Rows:
    """The most popular items of the shopper's strongest live categories and brands."""
    model, index = request.model, request.index
    attributes, parts = model.attributes, []
    strongest = sorted(request.shopper.interests.items(), key=lambda kv: -kv[1])
    for key, _ in strongest[:request.cfg.retrieval.interest_attributes]:
        kind, name = split_interest(key)
        if kind == INTEREST_CATEGORY and name in attributes.category_code:
            parts.append(index.by_category.of(attributes.category_code[name]))
        elif kind == INTEREST_BRAND and name in attributes.brand_code:
            parts.append(index.by_brand.of(attributes.brand_code[name]))
    return np.concatenate(parts) if parts else None


@candidate_source("live")
def live(request: Request) -> Rows:
    """The live trending view and the cold-start segment's favourites."""
    shopper = request.shopper
    rows, _ = trending_rows(request.model, shopper.trending)
    return np.concatenate([rows, np.asarray(_rows_of(request.model, shopper.segment), dtype=np.int64)])


@candidate_source("new_items")
def new_items(request: Request) -> Rows:
    """Fresh items (no batch factors yet) whose content is like the recent items'."""
    if request.weights.new_items <= 0:
        return None
    found = content_matches(request.model, request.shopper.recent, request.cfg.reason_min_similarity)
    return None if found is None else request.model.fresh_rows[found[0]]


@candidate_source("popular")
def popular(request: Request) -> Rows:
    return request.index.popular


@candidate_source("owned")
def owned(request: Request) -> Rows:
    """What the shopper owns: the repurchase policy and the buy-again list decide about those."""
    return _rows_of(request.model, request.shopper.owned)


@candidate_source("filters")
def filters(request: Request) -> Rows:
    """Every item passing the request's filters when they are at most retrieval.filter_scan (the merge then
    ranks the filtered catalogue exactly as full scoring does), else the most popular of its category or brand."""
    model, query, index = request.model, request.query, request.index
    keep = model.attributes.mask(query.category, query.brand, query.min_price, query.max_price)
    if keep is None:
        return None
    passing = np.flatnonzero(keep)
    if passing.size <= request.cfg.retrieval.filter_scan:
        return passing
    parts = []
    if query.category is not None and query.category in model.attributes.category_code:
        parts.append(index.by_category.of(model.attributes.category_code[query.category]))
    if query.brand is not None and query.brand in model.attributes.brand_code:
        parts.append(index.by_brand.of(model.attributes.brand_code[query.brand]))
    return np.concatenate(parts) if parts else None


@candidate_source("diversity")
def diversity(request: Request) -> Rows:
    """For the category cap (the version's, else serving.max_per_category): the popular items of the
    categories whose mean factor vector the taste likes best after the first, enough of them to fill a capped
    page."""
    cfg, taste, index = request.cfg, request.shopper.taste, request.index
    cap = request.model.category_cap(cfg.max_per_category)
    if cap <= 0 or taste is None or index.category_means.shape[0] == 0:
        return None
    wanted = -(-(request.query.k + request.query.offset) // cap) + cfg.retrieval.extra_categories
    liked = index.category_means @ np.asarray(taste, dtype=np.float32)
    best = np.argsort(-liked)[:wanted]
    return np.concatenate([index.by_category.of(int(c))[:cfg.retrieval.per_category_cap] for c in best.tolist()])
