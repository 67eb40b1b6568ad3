"""Rank items for a user from the batch factors and the user's real-time state, with reasons."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import redis

from recsys.config import ServingConfig
from recsys.contracts.segments import EVERYONE, segment_keys
from recsys.stores.model_store import FactorModel
from recsys.stores.online_store import OnlineStore

REASON_TASTE = "matches your taste"
REASON_POPULAR = "popular"
REASON_SEGMENT = "popular with shoppers like you"
REASON_NEW = "new, like"
REASON_SEEN = "you looked at this recently"


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: list[str]


@dataclass(frozen=True)
class Recommendations:
    user_id: str
    model_version: str | None
    degraded: bool
    items: list[ScoredItem] = field(default_factory=list)


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Scale to [-1, 1] by the largest magnitude so that different signals can be blended."""
    top = float(np.max(np.abs(scores))) if scores.size else 0.0
    return scores / top if top > 0 else scores


class Recommender:
    def __init__(self, model: Callable[[], FactorModel | None], online: OnlineStore, cfg: ServingConfig,
                 segment_attributes: list[str] | None = None) -> None:
        self._model = model
        self._online = online
        self._cfg = cfg
        self._segment_attributes = segment_attributes or []

    def _cold_start(self, model: FactorModel, attributes: Mapping[str, str] | None) -> tuple[np.ndarray, set[int]]:
        """Scores for a user nobody knows yet: what shoppers with the same attributes like most, then overall.

        Returns the scores and the items that came from the user's segment (for the reason).
        """
        base = 0.5 * _scaled(np.log1p(model.popularity))
        keys = segment_keys(attributes or {}, self._segment_attributes)
        segment = next((key for key in keys if key != EVERYONE and key in model.segment_popular), None)
        if segment is None:
            return base, set()
        ranked = [model.item_index[i] for i in model.segment_popular[segment] if i in model.item_index]
        for position, idx in enumerate(ranked):  # every segment favourite outranks every other item
            base[idx] = 1.0 + (len(ranked) - position) / len(ranked)
        return base, set(ranked)

    def _realtime_state(self, user_id: str, model: FactorModel | None
                        ) -> tuple[list[str], set[str], np.ndarray | None, bool]:
        """Recent items, purchases and the folded-in vector (for this model) from the speed layer."""
        try:
            vector = None if model is None else self._online.user_vector(
                user_id, model.version, model.item_factors.shape[1])
            return (self._online.recent_items(user_id, self._cfg.recent_window),
                    self._online.purchased(user_id), vector, False)
        except redis.RedisError:
            return [], set(), None, True

    def recommend(self, user_id: str, k: int, attributes: Mapping[str, str] | None = None) -> Recommendations:
        """The user's top k; attributes (age_band, gender, location, ...) only matter for a brand-new user."""
        model = self._model()
        recent, purchased, vector, degraded = self._realtime_state(user_id, model)
        if model is None:
            return Recommendations(user_id, None, degraded, [])
        recent_idx = [model.item_index[i] for i in recent if i in model.item_index]
        user_row = model.user_ids.get(user_id)
        from_segment: set[int] = set()
        if vector is not None and np.any(vector):  # the speed layer's live vector supersedes the batch one
            base, base_reason = _scaled(model.item_factors @ vector.astype(np.float32)), REASON_TASTE
        elif user_row is not None:
            base, base_reason = _scaled(model.item_factors @ model.user_factors[user_row]), REASON_TASTE
        elif recent_idx:  # unknown to the batch model: a vector from what they just looked at
            base = _scaled(model.item_factors @ model.item_factors[recent_idx].mean(axis=0))
            base_reason = REASON_TASTE
        else:
            base, from_segment = self._cold_start(model, attributes)
            base_reason = REASON_POPULAR
        similarity = np.zeros_like(base)
        if recent_idx:
            profile = model.item_unit[recent_idx].mean(axis=0)
            similarity = model.item_unit @ profile
        scores = base + self._cfg.recent_boost * similarity
        excluded = [model.item_index[i] for i in purchased if i in model.item_index]
        scores[excluded] = -np.inf
        top = _top_k(scores, k)
        items = [ScoredItem(model.item_ids[i], float(scores[i]), self._reasons(
                     model, i, base[i], recent_idx, REASON_SEGMENT if i in from_segment else base_reason))
                 for i in top]
        items = sorted(items + self._new_items(model, recent, purchased, k), key=lambda i: -i.score)[:k]
        return Recommendations(user_id, model.version, degraded, items)

    def _new_items(self, model: FactorModel, recent: list[str], purchased: set[str], k: int) -> list[ScoredItem]:
        """Catalogue items ALS has not seen yet, ranked by content similarity to what the user just viewed."""
        content = model.content
        seen_ids = [i for i in recent if content is not None and i in content.row]
        seen_rows = [content.row[i] for i in seen_ids] if content is not None else []
        if not seen_rows or model.new_item_rows.size == 0 or self._cfg.new_item_weight <= 0:
            return []
        seen = content.matrix[seen_rows]
        profile = np.asarray(seen.sum(axis=0)).ravel()
        norm = float(np.linalg.norm(profile))
        if norm == 0:
            return []
        candidates = model.new_item_profiles
        similarity = (candidates @ profile) / norm
        out = []
        for pos in np.argsort(-similarity, kind="stable")[:k]:
            item = content.item_ids[model.new_item_rows[pos]]
            if similarity[pos] < self._cfg.reason_min_similarity or item in purchased:
                continue
            nearest = seen_ids[int(np.argmax((seen @ candidates[pos].T).toarray().ravel()))]
            out.append(ScoredItem(item, self._cfg.new_item_weight * float(similarity[pos]),
                                  [f"{REASON_NEW} {nearest}"]))
        return out

    def _reasons(self, model: FactorModel, item: int, base: float, recent_idx: list[int],
                 base_reason: str) -> list[str]:
        reasons = []
        others = [r for r in recent_idx if r != item]  # an item does not explain itself
        if item in recent_idx:
            reasons.append(REASON_SEEN)
        if others and self._cfg.recent_boost > 0:
            similarities = model.item_unit[others] @ model.item_unit[item]
            nearest = int(np.argmax(similarities))
            if similarities[nearest] >= self._cfg.reason_min_similarity:
                reasons.append(f"because you viewed {model.item_ids[others[nearest]]}")
        if base > 0 or not reasons:
            reasons.append(base_reason)
        return reasons


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0:
        return []
    k = min(k, finite.size)
    part = finite[np.argpartition(-scores[finite], k - 1)[:k]]
    return part[np.argsort(-scores[part], kind="stable")].tolist()
