"""One request's merge: every signal as a vector over the candidate items, their weighted sum, and why.

Signals are scaled to about [0, 1] ("factors" and "recent" to [-1, 1]) so the weights of
`serving.merge` (or an A/B variant's MergeWeights) trade them off directly. Two-stage serving
(serving.retrieval.mode) scores only the candidate rows of recsys.serving.candidates; "full" scores every
item, the reference two-stage serving is checked against. The dense signals cost one float32 matrix
product over the candidates' factors for the taste and recent-item columns together; the live signals
(co-views, trending, new items) touch only the few rows they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from recsys.config import MergeWeights, RepurchaseConfig, ServingConfig
from recsys.contracts.redis_keys import INTEREST_BRAND, INTEREST_CATEGORY, split_interest
from recsys.sequence.gru import probabilities
from recsys.serving import reasons as why
from recsys.serving.candidates import (
    als_rows,
    candidates,
    co_view_pairs,
    content_matches,
    history_in,
    trending_rows,
    unit_factors,
)
from recsys.serving.neighbours import live_cosine
from recsys.serving.results import RecommendationQuery, ScoredItem
from recsys.serving.shopper import Shopper
from recsys.serving.top_k import scaled, top_rows
from recsys.stores.model_store import NORM_FLOOR, FactorModel

__all__ = ["Merge", "Ranked", "Shopper", "Signal", "rank_items", "repurchase_excluded"]


@dataclass(frozen=True)
class Signal:
    """A signal's values: dense over the first len(values) positions (rows None) or at the given positions."""

    values: np.ndarray
    rows: np.ndarray | None = None


class Merge:
    """The signals of one request over the candidate rows of `model`'s all_item_ids (all of them when `rows`
    is None), their sum and their explanations. Signals and scores are indexed by position in `rows`; rows
    are sorted, so the ALS items come first and ties still go to the lower row."""

    def __init__(self, model: FactorModel, cfg: ServingConfig, weights: MergeWeights, shopper: Shopper,
                 rows: np.ndarray | None = None) -> None:
        self.model, self.cfg, self.weights, self.shopper = model, cfg, weights, shopper
        self.rows = rows
        self.size = len(model.all_item_ids) if rows is None else rows.size
        self.n_als = model.n_items if rows is None else int(np.searchsorted(rows, model.n_items))
        self.recent_rows = als_rows(model, shopper.recent)  # newest first
        self.recent_set = {row for row in map(model.all_index.get, shopper.recent) if row is not None}
        self.signals: dict[str, Signal] = {}
        self._knn_pairs: tuple[np.ndarray, ...] | None = None  # (row, weighted part, source): for reasons
        self._segment_rows: set[int] = set()
        self._interest = (np.zeros(1, dtype=np.float32), np.zeros(1, dtype=np.float32))
        self._seen_content: tuple[list[str], object] | None = None
        self._session_rows = np.zeros(0, dtype=np.int64)  # the sequence model's input: embedding rows, oldest first
        self._factors_and_recent()
        self._popularity()
        self._item_knn()
        self._interests()
        self._co_views()
        self._trending()
        self._new_items()
        self._sequence()

    @cached_property
    def recent_unit(self) -> np.ndarray:
        """The recent items' unit factor vectors, newest first: the "recent" signal's direction is their mean, and
        each item of the page is explained by the nearest of them (computed once per request)."""
        return unit_factors(self.model, self.recent_rows)

    def _on(self, name: str) -> bool:
        return getattr(self.weights, name) > 0

    def take(self, values: np.ndarray) -> np.ndarray:
        """An array aligned to all_item_ids (or to the ALS items), at the candidate positions it covers."""
        if self.rows is None:
            return values
        # np.take, not values[rows]: about half the time on a memory-mapped factor matrix (one gather loop)
        return np.take(values, self.rows if len(values) > self.model.n_items else self.rows[:self.n_als], axis=0)

    def positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions of those of `rows` that are candidates, which of `rows` they are)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows is None:
            return rows, np.ones(rows.size, dtype=bool)
        if self.size == 0:
            return rows[:0], np.zeros(rows.size, dtype=bool)
        at = np.minimum(np.searchsorted(self.rows, rows), self.size - 1)
        found = self.rows[at] == rows
        return at[found], found

    def row_of(self, position: int) -> int:
        return position if self.rows is None else int(self.rows[position])

    def position(self, row: int) -> int | None:
        at, found = self.positions(np.asarray([row]))
        return int(at[0]) if found[0] else None

    def _sparse(self, rows: np.ndarray, values: np.ndarray) -> Signal | None:
        """Values at rows (row space) -> a signal at the candidate positions, scaled so the strongest row of
        all (candidate or not) scores 1."""
        top = float(values.max()) if values.size else 0.0
        at, found = self.positions(rows)
        if top <= 0 or at.size == 0:
            return None
        return Signal((values[found] / top).astype(np.float32), at)

    def _factors_and_recent(self) -> None:
        # The factor matrix is far bigger than the cache: both signals come from one pass over it.
        model, taste = self.model, self.shopper.taste
        columns = []
        use_taste = self._on("factors") and taste is not None
        if use_taste:
            columns.append(np.asarray(taste, dtype=np.float32))
        use_recent = self._on("recent") and self.recent_rows.size > 0
        if use_recent:
            columns.append(self.recent_unit.mean(axis=0).astype(np.float32))  # as candidates.recent_unit_mean
        if not columns:
            return
        factors = self.take(model.item_factors)
        product = factors @ (columns[0] if len(columns) == 1 else np.stack(columns, axis=1))
        product = product.reshape(factors.shape[0], -1)
        if use_taste:
            self.signals["factors"] = Signal(scaled(product[:, 0]))
        if use_recent:
            self.signals["recent"] = Signal(product[:, -1] * self.take(model.inverse_norms))

    def _popularity(self) -> None:
        if not self._on("popularity"):
            return
        values = self.take(self.model.popularity_score)
        segment = [self.model.all_index[i] for i in self.shopper.segment if i in self.model.all_index]
        if segment and self.shopper.taste is None:  # every segment favourite outranks every other item
            values = values.copy()
            at, found = self.positions(np.asarray(segment))
            values[at] = (1.0 + (len(segment) - np.arange(len(segment))) / len(segment))[found]
            self._segment_rows = set(segment)
        self.signals["popularity"] = Signal(values)

    def _item_knn(self) -> None:
        """The similar items of everything the shopper had, summed with each source's recency weight: the batch
        lists (one gather over the CSR lists of the history items, no per-pair Python) and, for live items that
        are in no batch list yet, their factor cosine to the history items (as "similar items" serves them)."""
        if not self._on("item_knn") or not self.shopper.history:
            return
        found = [pairs for pairs in (self._batch_knn_pairs(), self._live_knn_pairs()) if pairs is not None]
        if not found:
            return
        rows = np.concatenate([pairs[0] for pairs in found])
        parts = np.concatenate([pairs[1] for pairs in found])
        unique, inverse = np.unique(rows, return_inverse=True)
        signal = self._sparse(unique, np.bincount(inverse, weights=parts))
        self._knn_pairs = (rows, parts, np.concatenate([pairs[2] for pairs in found]))
        if signal is not None:
            self.signals["item_knn"] = signal

    def _batch_knn_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(row, weighted part, source) of each batch neighbour of each history item; the source is its code in
        the similar-items vocabulary (a history item the model does not rank still explains)."""
        model, similar = self.model, self.model.similar
        if similar is None:
            return None
        codes, weights = history_in(self.shopper, similar.row)
        if codes.size == 0:
            return None
        starts, lengths = similar.indptr[codes], similar.indptr[codes + 1] - similar.indptr[codes]
        if lengths.sum() == 0:
            return None
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        rows = model.similar_rows[similar.neighbours[offsets]]
        parts = similar.scores[offsets] * np.repeat(weights, lengths)
        sources = np.repeat(codes, lengths)
        keep = (rows >= 0) & (parts > 0)
        return (rows[keep], parts[keep], sources[keep]) if keep.any() else None

    def _live_knn_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(row, weighted part, source) of each live item with a positive factor cosine to a history item: what
        neighbours.live_similar lists under that item's similar items, by the same live_cosine. The source is
        -1 - its row, apart from the batch pairs' vocabulary codes."""
        model = self.model
        if model.live_items == 0:
            return None
        sources, weights = history_in(self.shopper, model.item_index)
        if sources.size == 0:
            return None
        live, cosine = live_cosine(model, sources)
        alike = (cosine > 0) & (live[:, None] != sources[None, :])  # an item is not similar to itself
        at, of = np.nonzero(alike)
        return (live[at], cosine[at, of] * weights[of], -1 - sources[of]) if at.size else None

    def _interests(self) -> None:
        if not self._on("interests") or not self.shopper.interests:
            return
        attributes, saturation = self.model.attributes, self.cfg.interest_saturation
        # One slot per code plus a last one that stays 0: an UNKNOWN (-1) code indexes it.
        category = np.zeros(len(attributes.category_names) + 1, dtype=np.float32)
        brand = np.zeros(len(attributes.brand_names) + 1, dtype=np.float32)
        for key, weight in self.shopper.interests.items():
            kind, name = split_interest(key)
            table, codes = ((category, attributes.category_code) if kind == INTEREST_CATEGORY else
                            (brand, attributes.brand_code) if kind == INTEREST_BRAND else (None, {}))
            code = codes.get(name)
            if table is not None and code is not None and weight > 0:
                table[code] = weight / (weight + saturation)
        if not (category.any() or brand.any()):
            return
        a, b = category[self.take(attributes.category)], brand[self.take(attributes.brand)]
        self._interest = (category, brand)
        self.signals["interests"] = Signal(a + b - a * b)  # either interest boosts; both boost more

    def _co_views(self) -> None:
        if not self._on("co_views"):
            return
        pairs = co_view_pairs(self.model, self.shopper)
        if pairs.rows.size == 0:
            return
        unique, inverse = np.unique(pairs.rows, return_inverse=True)
        signal = self._sparse(unique, np.bincount(inverse, weights=pairs.counts).astype(np.float32))
        if signal is not None:
            self.signals["co_views"] = signal

    def _trending(self) -> None:
        if not self._on("trending"):
            return
        signal = self._sparse(*trending_rows(self.model, self.shopper.trending))
        if signal is not None:
            self.signals["trending"] = signal

    def _new_items(self) -> None:
        if not self._on("new_items"):
            return
        found = content_matches(self.model, self.shopper.recent, self.cfg.reason_min_similarity)
        if found is None or found[0].size == 0:
            return
        keep, cosine, seen, matrix = found
        at, hit = self.positions(self.model.fresh_rows[keep])
        if at.size:
            self._seen_content = (seen, matrix)
            self.signals["new_items"] = Signal(cosine[keep][hit].astype(np.float32), at)

    def _sequence(self) -> None:
        """The next-item model reads the session (the recent items, oldest first) and scores its vocabulary."""
        model, weights = self.model, self.model.sequence
        if not self._on("sequence") or weights is None or not self.shopper.recent:
            return
        rows = weights.rows_of(self.shopper.recent[::-1])
        targets = model.sequence_rows
        if rows.size == 0 or not (targets >= 0).any():
            return
        keep = targets >= 0
        self._session_rows = rows
        at, found = self.positions(targets[keep])  # the candidates' positions (every row in full mode)
        if at.size:
            self.signals["sequence"] = Signal(probabilities(weights.logits(rows))[keep][found], at)

    def scores(self) -> np.ndarray:
        """The weighted sum at the candidate positions; new items no signal speaks for are never ranked."""
        scores = np.zeros(self.size, dtype=np.float32)
        for name, signal in self.signals.items():
            weight = np.float32(getattr(self.weights, name))
            if signal.rows is None:
                scores[:len(signal.values)] += weight * signal.values
            else:
                scores[signal.rows] += weight * signal.values
        tail = scores[self.n_als:]
        tail[tail <= 0] = -np.inf
        return scores

    def contributions(self, row: int) -> dict[str, float]:
        """Signal -> weighted part of the row's score (the parts sum to the score)."""
        position = self.position(row)
        return {} if position is None else self.contributions_at(np.asarray([position]))[0]

    def contributions_at(self, positions: np.ndarray) -> list[dict[str, float]]:
        """`contributions` of several candidate positions: one vector operation per signal, not one per item."""
        values = {}
        for name, signal in self.signals.items():
            if signal.rows is None:
                dense = signal.values
            else:  # scattered backwards, so a position named twice keeps its first value
                dense = np.zeros(self.size, dtype=np.float32)
                dense[signal.rows[::-1]] = signal.values[::-1]
            inside = positions < len(dense)
            at = np.where(inside, dense[np.where(inside, positions, 0)], 0.0).astype(np.float64)
            values[name] = (getattr(self.weights, name) * at).tolist()
        return [{name: parts[i] for name, parts in values.items() if parts[i] != 0} for i in range(len(positions))]

    def reasons(self, row: int, parts: dict[str, float]) -> list[str]:
        """Why, strongest signal first: each signal whose part is at least serving.reason_min_share of the
        largest part and that has something to say; the strongest one's if none does."""
        out = [why.REASON_SEEN] if row in self.recent_set else []
        positive = sorted(((part, name) for name, part in parts.items() if part > 0), reverse=True)
        for part, name in positive:
            text = self._reason(name, row) if part >= self.cfg.reason_min_share * positive[0][0] else None
            if text and text not in out:
                out.append(text)
        if not out:
            texts = (self._reason(name, row) for _, name in positive)
            out.append(next((t for t in texts if t), why.REASON_TASTE if "factors" in self.signals
                            else why.REASON_POPULAR))
        return out

    def _reason(self, name: str, row: int) -> str | None:
        model = self.model
        if name == "factors":
            return why.REASON_TASTE
        if name == "popularity":
            return why.REASON_SEGMENT if row in self._segment_rows else why.REASON_POPULAR
        if name == "trending":
            return why.trending_in(model.attributes.category_of(row))
        if name == "co_views":
            return self._co_view_reason(row)
        if name == "interests":
            return self._interest_reason(row)
        if name == "item_knn":
            return self._knn_reason(row)
        if name == "recent":
            return self._recent_reason(row)
        if name == "sequence":
            return self._session_reason(row)
        if name == "new_items" and self._seen_content is not None:
            seen, matrix = self._seen_content
            profile = model.fresh_profiles[int(np.searchsorted(model.fresh_rows, row))]
            similarity = (matrix @ profile.T).toarray().ravel()
            similarity[[i == model.all_item_ids[row] for i in seen]] = -np.inf  # an item does not explain itself
            best = int(np.argmax(similarity))
            return why.new_like(seen[best]) if np.isfinite(similarity[best]) else None
        return None

    def _co_view_reason(self, row: int) -> str | None:
        """The recent item the row's item was co-viewed with most (the first such, on a tie)."""
        pairs = co_view_pairs(self.model, self.shopper)
        hit = np.flatnonzero(pairs.rows == row)
        return why.viewed_together(pairs.sources[int(hit[np.argmax(pairs.counts[hit])])]) if hit.size else None

    def _knn_reason(self, row: int) -> str | None:
        """The history item whose weighted similarity to the row's item is the largest."""
        if self._knn_pairs is None:
            return None
        rows, parts, sources = self._knn_pairs
        hit = np.flatnonzero(rows == row)
        if hit.size == 0:
            return None
        source = int(sources[hit[np.argmax(parts[hit])]])
        return why.similar_to(self.model.similar.vocabulary[source] if source >= 0  # type: ignore[union-attr]
                              else self.model.all_item_ids[-1 - source])

    def _recent_reason(self, row: int) -> str | None:
        """The most similar other recent item, when at least serving.reason_min_similarity alike."""
        model = self.model
        other = self.recent_rows != row  # an item does not explain itself
        if not other.any() or row >= model.n_items:
            return None
        others = self.recent_rows[other]
        cosine = (self.recent_unit[other] @ model.item_factors[row]) / max(float(model.item_norms[row]), NORM_FLOOR)
        nearest = int(np.argmax(cosine))
        if cosine[nearest] < self.cfg.reason_min_similarity:
            return None
        return why.viewed(model.item_ids[others[nearest]])

    def _session_reason(self, row: int) -> str | None:
        """The session items whose embeddings are closest to the row's item, closest first."""
        weights = self.model.sequence
        target = None if weights is None else weights.row.get(self.model.all_item_ids[row])
        if weights is None or target is None or self._session_rows.size == 0:
            return None
        inputs = np.asarray(weights.embeddings[self._session_rows])
        alike = inputs @ np.asarray(weights.embeddings[target])
        alike /= np.maximum(np.linalg.norm(inputs, axis=1), NORM_FLOOR)
        order = np.argsort(-alike, kind="stable")[:self.cfg.session_reason_items]
        return why.this_session([weights.item_ids[int(self._session_rows[i]) - 1] for i in order])

    def _interest_reason(self, row: int) -> str | None:
        attributes = self.model.attributes
        category, brand = self._interest
        by_category = float(category[attributes.category[row]])
        by_brand = float(brand[attributes.brand[row]])
        if max(by_category, by_brand) <= 0:
            return None
        name = attributes.category_of(row) if by_category >= by_brand else attributes.brand_of(row)
        return why.interest_in(name) if name else None


SECONDS_PER_DAY = 86_400.0


def repurchase_excluded(owned: dict[str, float], policy: RepurchaseConfig, now_s: float) -> set[str]:
    """The owned items the repurchase policy keeps off a list: all of them, those bought within the
    window, or none."""
    if policy.policy == "allow":
        return set()
    if policy.policy == "exclude":
        return set(owned)
    horizon = now_s - policy.window_days * SECONDS_PER_DAY
    return {item for item, when in owned.items() if when > horizon}


def rank_items(model: FactorModel, cfg: ServingConfig, weights: MergeWeights, shopper: Shopper,
               query: RecommendationQuery, now_s: float) -> Ranked:
    """THE ranking: candidates, merge, repurchase policy, exclusions, business filters, category cap, page, reasons.

    Serving (Recommender) and the offline evaluation (recsys.batch.served_evaluation) both call this, so
    what is evaluated is what is served. In two-stage mode (serving.retrieval.mode) only the candidates of
    recsys.serving.candidates are scored; when fewer of them than the page needs pass the filters, the page
    is ranked over every item instead, so a narrow filter never gets a shorter list than full scoring.
    """
    if cfg.retrieval.mode == "two_stage":
        rows = candidates(model, cfg, weights, shopper, query)
        if rows.size < len(model.all_item_ids):
            ranked = _rank(Merge(model, cfg, weights, shopper, rows), query, now_s)
            if len(ranked.items) >= query.k:
                return ranked
    return _rank(Merge(model, cfg, weights, shopper), query, now_s)


def _rank(merge: Merge, query: RecommendationQuery, now_s: float) -> Ranked:
    model, cfg, shopper = merge.model, merge.cfg, merge.shopper
    scores = merge.scores()
    owned_out = repurchase_excluded(shopper.owned, cfg.repurchase, now_s)
    excluded, _ = merge.positions(np.asarray([model.all_index[i] for i in owned_out | query.exclude
                                              if i in model.all_index], dtype=np.int64))
    base = scores.copy() if cfg.repurchase.buy_again_k > 0 else None
    scores[excluded] = -np.inf
    attributes = model.attributes if merge.rows is None else model.attributes.take(merge.rows)
    keep = attributes.mask(query.category, query.brand, query.min_price, query.max_price, query.include_unavailable)
    if keep is not None:
        scores[~keep] = -np.inf
    cap = 0 if query.category is not None else model.category_cap(cfg.max_per_category)  # one asked: no cap
    positions = top_rows(scores, query.k, query.offset, attributes.category, cap)
    if query.reasons:
        items = [_scored(model, merge, merge.row_of(p), float(scores[p]), parts, query.explain, shopper.owned)
                 for p, parts in zip(positions.tolist(), merge.contributions_at(positions), strict=True)]
    else:  # the same items in the same order, unworded
        items = [ScoredItem(model.all_item_ids[merge.row_of(p)], float(scores[p]), []) for p in positions.tolist()]
    again: list[ScoredItem] = []
    if base is not None:
        mine = np.full(base.shape, -np.inf, dtype=np.float32)
        own, _ = merge.positions(np.asarray([model.all_index[i] for i in shopper.owned
                                             if i in model.all_index and i not in query.exclude], dtype=np.int64))
        mine[own] = base[own]
        if keep is not None:
            mine[~keep] = -np.inf
        again = [ScoredItem(model.all_item_ids[row], float(mine[p]), [why.REASON_BUY_AGAIN],
                            merge.contributions(row) if query.explain else None)
                 for p, row in ((p, merge.row_of(p)) for p in top_rows(mine, cfg.repurchase.buy_again_k).tolist())]
    return Ranked(items, again)


@dataclass(frozen=True)
class Ranked:
    items: list[ScoredItem]
    buy_again: list[ScoredItem] = field(default_factory=list)  # owned items shown on purpose, labelled


def _scored(model: FactorModel, merge: Merge, row: int, score: float, parts: dict[str, float], explain: bool,
            owned: dict[str, float]) -> ScoredItem:
    reasons = merge.reasons(row, parts)
    if model.all_item_ids[row] in owned:  # the policy let an own item through: say so
        reasons = [why.REASON_BUY_AGAIN, *reasons]
    return ScoredItem(model.all_item_ids[row], score, reasons, parts if explain else None)
