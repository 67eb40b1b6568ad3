"""Rank items for a user from the batch model and the speed layer's real-time state, with reasons.

A request reads Redis once (the user's state, the co-views of their recent items and the trending view,
one Lua script: RedisOnlineStore.request_state), gathers a bounded set of candidates (recsys.serving.candidates),
scores them with vector operations (recsys.serving.merge) and ranks with one argpartition
(recsys.serving.top_k). Any Redis error
gives the batch-only list, marked degraded, never an exception.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import islice

import numpy as np
import redis

from recsys.config import MergeWeights, ServingConfig
from recsys.contracts.segments import EVERYONE, segment_keys
from recsys.serving import reasons as why
from recsys.serving.candidates import SOURCES, unknown_sources
from recsys.serving.merge import SECONDS_PER_DAY, Shopper, rank_items
from recsys.serving.neighbours import blend_similar, fallback_similar, live_similar
from recsys.serving.pending_overlay import OverlayRules, overlay_pending
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
from recsys.stores.user_history import EMPTY as EMPTY_HISTORY
from recsys.stores.user_history import UserItems

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
                 segment_attributes: list[str] | None = None, *, interest_half_life_s: float | None = None,
                 clock: Callable[[], float] = time.time, pending_rules: OverlayRules | None = None) -> None:
        unknown = unknown_sources(cfg.retrieval.sources)
        if unknown:
            raise ValueError(f"serving.retrieval.sources names unknown candidate sources {unknown}; "
                             f"known: {sorted(SOURCES)}")
        self._clock = clock  # "now" for the repurchase window and history recency (evaluation: the cut)
        self._model = model
        self._online = online
        self._cfg = cfg
        self._segment_attributes = segment_attributes or []
        self._half_life_s = math.inf if interest_half_life_s is None else interest_half_life_s
        self._pending_rules = pending_rules  # read your own writes: overlay the shopper's pending events

    def recommend(self, user_id: str, query: RecommendationQuery) -> Recommendations:
        """The user's page of recommendations: their taste, recent items, interests and the live signals."""
        model = self._model()
        weights = self._weights(model, query)
        if model is None:
            return Recommendations(user_id, None, self._user_state(user_id, model)[1], [])
        state, signals, degraded = self._request_state(user_id, model, weights)
        if state.pending and self._pending_rules is not None:
            state = overlay_pending(state, model, user_id, self._pending_rules, self._clock(),
                                    self._cfg.recent_window, _erased_since(model, state))
            signals = self._pending_co_views(state.recent, signals, weights)
        taste = self._taste(model, user_id, state)
        now = self._clock()
        had = model.history.of(user_id) if model.history is not None else EMPTY_HISTORY
        history = self._history(state.recent, had, now)
        owned = {**had.owned(), **dict.fromkeys(state.purchased, now)}  # a purchase the stream saw is the newest
        recent = state.recent or had.items[:self._cfg.recent_window]
        shopper = Shopper(recent=recent, taste=taste, interests=state.interests, co_views=signals.co_views,
                          trending=signals.trending, history=history, owned=owned, user_id=user_id,
                          segment=self._segment(model, query.attributes) if taste is None else [])
        ranked = rank_items(model, self._cfg, weights, shopper, query, now)
        return Recommendations(user_id, model.version, degraded, ranked.items, ranked.buy_again)

    def anonymous(self, seen_items: Sequence[str], query: RecommendationQuery) -> Recommendations:
        """A visitor without an id: a temporary vector folded in from the items seen this session
        (oldest first), the same merge and filters; the seen items themselves are never returned."""
        model = self._model()
        if model is None:
            return Recommendations(None, None, False, [])
        weights = self._weights(model, query)
        seen = list(dict.fromkeys(seen_items))
        recent = seen[::-1]  # newest first, as the speed layer keeps a user's recent items
        signals, degraded = self._item_signals(recent, weights)
        taste = self._fold(model, seen)
        shopper = Shopper(recent=recent, taste=taste, co_views=signals.co_views, trending=signals.trending,
                          history=dict.fromkeys(recent[:self._cfg.history_window], 1.0),
                          segment=self._segment(model, query.attributes) if taste is None else [])
        ranked = rank_items(model, self._cfg, weights, shopper, query.with_exclude(seen), self._clock())
        return Recommendations(None, model.version, degraded, ranked.items)

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
        elif model.live_items:  # items new since the batch run join by their live vectors
            batch = sorted([*batch, *live_similar(model, item_id, k)], key=lambda pair: -pair[1])
        co_views: list[tuple[str, float]] = []
        if self._cfg.similar.co_views > 0:
            try:
                co_views = self._online.item_signals([item_id], self._cfg.co_view_k, 0).co_views.get(item_id, [])
            except redis.RedisError as exc:
                log.warning("similar items of %s without co-views: %s", item_id, exc)
        return blend_similar(model, item_id, servable(model, batch), servable(model, co_views), k, self._cfg.similar)

    def trending(self, k: int, category: str | None = None) -> TrendingItems:
        """The live trending view, optionally of one category, topped up with the model's popularity (a fresh
        start has no live view yet); the model's popularity alone when Redis fails. Only servable catalogue
        items: an id only events named (a probe) is never shown."""
        model = self._model()
        try:
            rows = self._online.trending(max(self._cfg.trending_pool, k))  # filters drop some
        except redis.RedisError:
            return TrendingItems(self._popular(model, k, category), True)
        items = []
        for item, score in servable(model, rows):
            row = model.all_index[item]
            item_category = model.attributes.category_of(row)
            if category is not None and item_category != category:
                continue
            items.append(ScoredItem(item, score, [why.trending_in(item_category)]))
            if len(items) == k:
                break
        if len(items) < k:
            shown = {item.item_id for item in items}
            popular = [p for p in self._popular(model, k + len(items), category) if p.item_id not in shown]
            items += popular[:k - len(items)]
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

    def _request_state(self, user_id: str, model: FactorModel,
                       weights: MergeWeights) -> tuple[RealtimeState, ItemSignals, bool]:
        """The user's state and the live item signals in one round trip; batch-only (degraded) on a Redis error."""
        cfg = self._cfg
        try:
            state, signals = self._online.request_state(
                user_id, model.version, model.item_factors.shape[1], cfg.recent_window, self._half_life_s,
                cfg.co_view_sources if weights.co_views > 0 else 0, cfg.co_view_k,
                cfg.trending_pool if weights.trending > 0 else 0)
            return state, signals, False
        except redis.RedisError as exc:
            log.warning("serving %s without real-time state: %s", user_id, exc)
            return RealtimeState(), ItemSignals(), True

    def _pending_co_views(self, recent: list[str], signals: ItemSignals, weights: MergeWeights) -> ItemSignals:
        """The co-views of the newest recent items that only pending events named (a second round trip, only
        then); the signals as they were when Redis fails."""
        missing = [i for i in recent[:self._cfg.co_view_sources] if i not in signals.co_views]
        if not missing or weights.co_views <= 0:
            return signals
        try:
            more = self._online.item_signals(missing, self._cfg.co_view_k, 0).co_views
        except redis.RedisError as exc:
            log.warning("pending items' co-views unread: %s", exc)
            return signals
        return ItemSignals({**signals.co_views, **more}, signals.trending)

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
        if row is not None and not _erased_since(model, state):
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

    def _weights(self, model: FactorModel | None, query: RecommendationQuery) -> MergeWeights:
        """The query's weights (an A/B variant's), else those tuned with the model, else serving.merge."""
        return query.weights or (model.merge if model is not None else None) or self._cfg.merge

    def _history(self, recent: list[str], had: UserItems, now: float) -> dict[str, float]:
        """Item -> recency weight: the stream's recent items count fully, batch items halve every
        serving.history_half_life_days (at most serving.history_window items in all)."""
        weights = dict.fromkeys(recent, 1.0)
        half_life = self._cfg.history_half_life_days * SECONDS_PER_DAY
        for item, last in zip(had.items, had.last_s.tolist(), strict=True):
            if len(weights) >= self._cfg.history_window:
                break
            weights.setdefault(item, float(0.5 ** (max(now - last, 0.0) / half_life)))
        return weights

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


def servable(model: FactorModel | None, scored: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The (item, score) pairs whose item the model ranks and may serve (listed, available, not blocked)."""
    if model is None:
        return []
    index, attributes = model.all_index, model.attributes
    return [(item, score) for item, score in scored
            if (row := index.get(item)) is not None and attributes.is_servable(row)]


def _erased_since(model: FactorModel, state: RealtimeState) -> bool:
    """The user was forgotten after `model` was trained (or when it was is unknown): the model's row for them
    was learnt from erased events and stays unused until a model trained after the erasure is served."""
    return state.erased_at is not None and (model.trained_at is None or model.trained_at <= state.erased_at)
