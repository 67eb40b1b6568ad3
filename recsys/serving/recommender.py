"""Rank items for a user from the batch model and the speed layer's real-time state, with reasons.

A request reads Redis at most twice (the user's state, then the co-views of their recent items with
the trending view, each one pipeline), scores the whole catalogue with vector operations
(recsys.serving.merge) and ranks with one argpartition (recsys.serving.top_k). Any Redis error
gives the batch-only list, marked degraded, never an exception.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from itertools import islice

import numpy as np
import redis

from recsys.config import MergeWeights, ServingConfig
from recsys.contracts.segments import EVERYONE, segment_keys
from recsys.serving import reasons as why
from recsys.serving.merge import Merge, Shopper
from recsys.serving.neighbours import blend_similar, fallback_similar
from recsys.serving.reasons import REASON_NEW, REASON_POPULAR, REASON_SEEN, REASON_SEGMENT, REASON_TASTE
from recsys.serving.results import (
    ItemCard,
    RecommendationQuery,
    Recommendations,
    ScoredItem,
    TrendingItems,
    UnknownItemError,
)
from recsys.serving.top_k import top_rows
from recsys.stores.model_store import FactorModel
from recsys.stores.online_store import ItemSignals, OnlineStore, RealtimeState

log = logging.getLogger(__name__)

__all__ = [
    "REASON_NEW", "REASON_POPULAR", "REASON_SEEN", "REASON_SEGMENT", "REASON_TASTE", "ItemCard",
    "RecommendationQuery", "Recommendations", "Recommender", "ScoredItem", "TrendingItems", "UnknownItemError",
]


class Recommender:
    """Serves one model (whatever `model()` returns now) merged with the online store's live signals.

    interest_half_life_s should be stream.interest_half_life_s, the half-life the speed layer stores
    interests with; without it interests count as of their last event (no further decay).
    """

    def __init__(self, model: Callable[[], FactorModel | None], online: OnlineStore, cfg: ServingConfig,
                 segment_attributes: list[str] | None = None, *, interest_half_life_s: float | None = None) -> None:
        self._model = model
        self._online = online
        self._cfg = cfg
        self._segment_attributes = segment_attributes or []
        self._half_life_s = math.inf if interest_half_life_s is None else interest_half_life_s

    def recommend(self, user_id: str, query: RecommendationQuery) -> Recommendations:
        """The user's page of recommendations: their taste, recent items, interests and the live signals."""
        model = self._model()
        weights = query.weights or self._cfg.merge
        state, degraded = self._user_state(user_id, model)
        if model is None:
            return Recommendations(user_id, None, degraded, [])
        signals, failed = (ItemSignals(), False) if degraded else self._item_signals(state.recent, weights)
        if failed:  # batch-only: no part of the real-time state is trusted
            state, degraded = RealtimeState(), True
        taste = self._taste(model, user_id, state)
        shopper = Shopper(recent=state.recent, taste=taste, interests=state.interests, co_views=signals.co_views,
                          trending=signals.trending,
                          segment=self._segment(model, query.attributes) if taste is None else [])
        items = self._rank(model, Merge(model, self._cfg, weights, shopper), state.purchased, query)
        return Recommendations(user_id, model.version, degraded, items)

    def anonymous(self, seen_items: Sequence[str], query: RecommendationQuery) -> Recommendations:
        """A visitor without an id: a temporary vector folded in from the items seen this session
        (oldest first), the same merge and filters; the seen items themselves are never returned."""
        model = self._model()
        if model is None:
            return Recommendations(None, None, False, [])
        weights = query.weights or self._cfg.merge
        seen = list(dict.fromkeys(seen_items))
        recent = seen[::-1]  # newest first, as the speed layer keeps a user's recent items
        signals, degraded = self._item_signals(recent, weights)
        taste = self._fold(model, seen)
        shopper = Shopper(recent=recent, taste=taste, co_views=signals.co_views, trending=signals.trending,
                          segment=self._segment(model, query.attributes) if taste is None else [])
        items = self._rank(model, Merge(model, self._cfg, weights, shopper), frozenset(seen), query)
        return Recommendations(None, model.version, degraded, items)

    def similar(self, item_id: str, k: int) -> list[ScoredItem]:
        """Items like `item_id`: the batch neighbours blended with its live co-views (serving.similar).

        Raises UnknownItemError for an item neither the model nor its content profiles know; without a
        model there is nothing to compare with and the list is empty.
        """
        model = self._model()
        if model is None:
            return []
        if item_id not in model.all_index:
            raise UnknownItemError(item_id)
        batch = model.similar.of(item_id, k) if model.similar is not None else []
        if not batch:
            batch = fallback_similar(model, item_id, k)
        co_views: list[tuple[str, float]] = []
        if self._cfg.similar.co_views > 0:
            try:
                co_views = self._online.item_signals([item_id], self._cfg.co_view_k, 0).co_views.get(item_id, [])
            except redis.RedisError as exc:
                log.warning("similar items of %s without co-views: %s", item_id, exc)
        return blend_similar(model, item_id, batch, co_views, k, self._cfg.similar)

    def trending(self, k: int, category: str | None = None) -> TrendingItems:
        """The live trending view, optionally of one category; the model's popularity when Redis fails."""
        model = self._model()
        try:
            rows = self._online.trending(self._cfg.trending_pool if category is not None else k)
        except redis.RedisError:
            return TrendingItems(self._popular(model, k, category), True)
        items = []
        for item, score in rows:
            row = None if model is None else model.all_index.get(item)
            item_category = None if row is None else model.attributes.category_of(row)
            if category is not None and item_category != category:
                continue
            items.append(ScoredItem(item, score, [why.trending_in(item_category)]))
            if len(items) == k:
                break
        return TrendingItems(items, False)

    def describe(self, item_ids: Sequence[str]) -> list[ItemCard]:
        """Category, brand and price of the items the served model ranks, in the order asked (others left out)."""
        model = self._model()
        if model is None:
            return []
        cards = []
        for item in dict.fromkeys(item_ids):
            row = model.all_index.get(item)
            if row is None:
                continue
            price = float(model.attributes.price[row])
            cards.append(ItemCard(item, model.attributes.category_of(row), model.attributes.brand_of(row),
                                  None if math.isnan(price) else price))
        return cards

    def known_users(self, n: int) -> list[str]:
        """Up to `n` shoppers the served model has factors for (in the model's order): someone to show."""
        model = self._model()
        return [] if model is None else list(islice(model.user_ids, n))

    def _user_state(self, user_id: str, model: FactorModel | None) -> tuple[RealtimeState, bool]:
        try:
            rank = 0 if model is None else model.item_factors.shape[1]
            return self._online.user_state(user_id, None if model is None else model.version, rank,
                                           self._cfg.recent_window, self._half_life_s), False
        except redis.RedisError as exc:
            log.warning("serving %s without real-time state: %s", user_id, exc)
            return RealtimeState(), True

    def _item_signals(self, recent: list[str], weights: MergeWeights) -> tuple[ItemSignals, bool]:
        """Co-views of the newest recent items and the trending view (one round trip, none if unused)."""
        sources = recent[:self._cfg.co_view_sources] if weights.co_views > 0 else []
        trending_k = self._cfg.trending_pool if weights.trending > 0 else 0
        if not sources and trending_k == 0:
            return ItemSignals(), False
        try:
            return self._online.item_signals(sources, self._cfg.co_view_k, trending_k), False
        except redis.RedisError as exc:
            log.warning("serving without live item signals: %s", exc)
            return ItemSignals(), True

    @staticmethod
    def _taste(model: FactorModel, user_id: str, state: RealtimeState) -> np.ndarray | None:
        """The live folded-in vector, else the batch one, else the mean of the recent items; None: cold."""
        if state.vector is not None and np.any(state.vector):
            return state.vector
        row = model.user_ids.get(user_id)
        if row is not None:
            return model.user_factors[row]
        rows = [model.item_index[i] for i in state.recent if i in model.item_index]
        return model.item_factors[rows].mean(axis=0) if rows else None

    def _fold(self, model: FactorModel, seen: list[str]) -> np.ndarray | None:
        """Fold the seen items into a zero vector as the speed layer does for a user the model lacks."""
        if not any(i in model.item_index for i in seen):
            return None
        fold = model.fold_in
        x = fold.fold(np.zeros(fold.rank), seen, self._cfg.anonymous_event_strength)
        return x if np.any(x) else None

    def _segment(self, model: FactorModel, attributes: Mapping[str, str] | None) -> list[str]:
        """The favourites of the most specific segment of `attributes` this version has rows for."""
        keys = segment_keys(attributes or {}, self._segment_attributes)
        key = next((key for key in keys if key != EVERYONE and key in model.segment_popular), None)
        return [] if key is None else model.segment_popular[key]

    def _rank(self, model: FactorModel, merge: Merge, purchased: frozenset[str],
              query: RecommendationQuery) -> list[ScoredItem]:
        scores = merge.scores()
        excluded = [model.all_index[i] for i in purchased | query.exclude if i in model.all_index]
        scores[excluded] = -np.inf
        keep = model.attributes.mask(query.category, query.brand, query.min_price, query.max_price)
        if keep is not None:
            scores[~keep] = -np.inf
        cap = 0 if query.category is not None else self._cfg.max_per_category  # one category asked: no cap
        rows = top_rows(scores, query.k, query.offset, model.attributes.category, cap)
        items = []
        for row in rows.tolist():
            parts = merge.contributions(row)
            items.append(ScoredItem(model.all_item_ids[row], float(scores[row]), merge.reasons(row, parts),
                                    parts if query.explain else None))
        return items

    def _popular(self, model: FactorModel | None, k: int, category: str | None) -> list[ScoredItem]:
        """The model's most popular items (of `category`): what trending falls back to."""
        if model is None:
            return []
        scores = model.popularity_score[:model.n_items].copy()
        keep = model.attributes.mask(category=category)
        if keep is not None:
            scores[~keep[:model.n_items]] = -np.inf
        return [ScoredItem(model.item_ids[row], float(scores[row]), [REASON_POPULAR])
                for row in top_rows(scores, k).tolist()]
