"""Read your own writes: fold the shopper's pending events (acknowledged, not yet applied by the stream) into
the real-time state a request ranks with, as the stream will once it applies them.

Pure and in memory, per request: nothing is written back (the stream stays the only writer of durable state).
The pending events come with the state in one snapshot (recsys.stores.pending_events), minus those the state
already includes, so no event counts twice. The rules follow the stream's (recsys.speed.adjustments): recent
items, purchases and cart, category and brand interests by events.weights, and the vector updated with the
same FoldIn steps against the served model, starting where the stream would start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from recsys.config import Settings
from recsys.contracts.events import event_strength
from recsys.contracts.redis_keys import INTEREST_BRAND, INTEREST_CATEGORY, decay, interest_key
from recsys.stores.model_store import FactorModel
from recsys.stores.online_store import RealtimeState
from recsys.stores.pending_events import PendingEvent


@dataclass(frozen=True)
class OverlayRules:
    """The stream's rules the overlay repeats (events.weights and the stream section)."""

    weights: Mapping[str, float]
    interest_half_life_s: float
    max_interests: int
    purchased_max: int
    quantity: str = "linear"  # events.quantity

    @classmethod
    def from_settings(cls, settings: Settings) -> OverlayRules:
        stream = settings.stream
        return cls(dict(settings.events.weights), stream.interest_half_life_s, stream.max_interests,
                   stream.purchased_max, settings.events.quantity)

    def strength(self, event: PendingEvent) -> float:
        """events.weights of the type, a purchase's scaled by its quantity (as the stream counts it)."""
        return event_strength(event.event_type, event.quantity, self.weights, self.quantity)


def overlay_pending(state: RealtimeState, model: FactorModel, user_id: str, rules: OverlayRules, now: float,
                    recent_limit: int, erased: bool = False) -> RealtimeState:
    """`state` with its pending events applied (and none left pending); `state` itself when there are none.

    `erased`: the user was forgotten after `model` was trained, so their batch row is not used as a start."""
    events = sorted(state.pending, key=lambda e: e.ts)  # the stream applies a user's events in time order
    if not events:
        return state
    recent = list(dict.fromkeys([*(e.item_id for e in reversed(events)), *state.recent]))[:recent_limit]
    purchased, cart = set(state.purchased), dict.fromkeys(state.cart)
    for event in events:
        if event.event_type == "purchase":
            purchased.add(event.item_id)
            cart.pop(event.item_id, None)
        elif event.event_type == "add_to_cart":
            cart.pop(event.item_id, None)
            cart[event.item_id] = None
        elif event.event_type == "remove_from_cart":
            cart.pop(event.item_id, None)
    return replace(state, recent=recent, purchased=frozenset(purchased), cart=list(cart)[-rules.purchased_max:],
                   interests=_interests(state.interests, events, model, rules, now),
                   vector=_vector(state, events, model, user_id, rules, erased), pending=())


def _interests(current: Mapping[str, float], events: list[PendingEvent], model: FactorModel, rules: OverlayRules,
               now: float) -> dict[str, float]:
    """Interests decayed to now plus each event's strength decayed from its time, strongest first."""
    weights = dict(current)
    for event in events:
        row = model.all_index.get(event.item_id)
        value = rules.strength(event)
        if row is None or value == 0:
            continue
        added = decay(value, now - event.ts, rules.interest_half_life_s)
        for kind, name in ((INTEREST_CATEGORY, model.attributes.category_of(row)),
                           (INTEREST_BRAND, model.attributes.brand_of(row))):
            if name is None:
                continue
            key = interest_key(kind, name)
            weight = weights.get(key, 0.0) + added
            if weight > 0:
                weights[key] = weight
            else:
                weights.pop(key, None)
    return dict(sorted(weights.items(), key=lambda kv: -kv[1])[:rules.max_interests])


def _vector(state: RealtimeState, events: list[PendingEvent], model: FactorModel, user_id: str,
            rules: OverlayRules, erased: bool) -> np.ndarray | None:
    """The stream's next vector: its current one for the served model, else the batch row (zeros for a new or
    erased shopper) with the recent items folded in again; then one FoldIn step per pending event."""
    if not any(e.item_id in model.item_index for e in events):
        return state.vector
    fold = model.fold_in
    if state.vector is not None:
        x = np.asarray(state.vector, dtype=np.float64)
    else:
        row = None if erased else model.user_ids.get(user_id)
        x = np.zeros(fold.rank) if row is None else model.user_factors[row].astype(np.float64)
        x = fold.fold(x, reversed(state.recent), rules.weights.get("view", 1.0))  # oldest first
    for event in events:
        x = fold.update(x, event.item_id, rules.strength(event))
    return x if np.any(x) else state.vector
