"""What one user's new events change in their real-time state: pure logic, no I/O.

The Redis writer reads a user's current state, calls `update_user` and writes the result in one
transaction; tests call `update_user` directly. The profile's format, the interest keys and their decay
are the Redis contract (recsys.contracts.redis_keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.als.foldin import FoldIn, ItemFoldIn
from recsys.config import StreamConfig
from recsys.contracts import redis_keys as rk
from recsys.contracts.events import event_strength
from recsys.contracts.redis_keys import current_interests, decay, decode_vector, encode_vector

POSITIVE_CO_VIEW_EVENTS = ("view", "click", "add_to_cart")


@dataclass(frozen=True)
class SpeedEvent:
    user_id: str
    item_id: str
    event_type: str
    ts: float  # epoch seconds
    session_id: str | None = None
    quantity: int = 1
    event_id: str | None = None  # the client's or the API's id: (user_id, event_id) is the event's identity
    topic: str | None = None  # Kafka coordinates (None outside the stream): the offset watermark's key
    partition: int | None = None
    offset: int | None = None
    ingested_at: float | None = None  # Kafka timestamp (epoch seconds): when the event entered the system


@dataclass(frozen=True)
class ModelContext:
    """The published model the stream folds events into (None fields: no model published yet)."""

    version: str
    fold: FoldIn
    user_vector: Callable[[str], np.ndarray | None]  # the batch vector of a user the model knows
    item_fold: ItemFoldIn | None = None  # folds events into items the model lacks (None: no live items)


@dataclass(frozen=True)
class UserState:
    profile: Mapping[str, Any]  # the profile's JSON fields (recsys.contracts.redis_keys.decode_profile)
    vector: bytes | None  # the stored folded-in vector
    recent: Sequence[tuple[str, float]]  # (item, ts), latest first


@dataclass
class UserUpdate:
    profile: dict[str, Any] = field(default_factory=dict)
    vector: bytes | None = None
    recent: dict[str, int] = field(default_factory=dict)
    co_views: list[tuple[str, str]] = field(default_factory=list)
    trending: dict[tuple[int, str], float] = field(default_factory=dict)


def update_user(events: Sequence[SpeedEvent], state: UserState, cfg: StreamConfig, weights: Mapping[str, float],
                catalogue: Mapping[str, tuple[str | None, str | None]], model: ModelContext | None,
                quantity: str = "linear") -> UserUpdate:
    """The writes that apply `events` (one user's, oldest first) to `state`; a purchase's weight is scaled by its
    quantity as the batch scales it (events.quantity)."""
    out = UserUpdate()
    previous = list(state.recent)  # latest first; grows with this batch's events for co-views
    ref = float(state.profile.get(rk.PROFILE_INTERESTS_TS) or 0.0)
    interests = current_interests(state.profile, ref, cfg.interest_half_life_s) if ref else {}
    sessions = [list(s) for s in state.profile.get(rk.PROFILE_SESSIONS, [])]
    session_id = state.profile.get(rk.PROFILE_SESSION_ID)
    purchased = dict.fromkeys(state.profile.get(rk.PROFILE_PURCHASED, []))  # ordered sets, oldest first
    cart = dict.fromkeys(state.profile.get(rk.PROFILE_CART, []))
    x = _start_vector(events[0].user_id, state, model, weights) if model and events else None
    for ev in events:
        value = event_strength(ev.event_type, ev.quantity, weights, quantity)
        # Whole seconds: Redis stores integer scores in a few bytes, a fractional one as text.
        out.recent[ev.item_id] = max(int(ev.ts), out.recent.get(ev.item_id, 0))
        if ev.event_type == "purchase":
            _move_to_end(purchased, ev.item_id)
            cart.pop(ev.item_id, None)
        elif ev.event_type == "add_to_cart":
            _move_to_end(cart, ev.item_id)
        elif ev.event_type == "remove_from_cart":
            cart.pop(ev.item_id, None)
        if ev.event_type in POSITIVE_CO_VIEW_EVENTS:
            partners = [item for item, ts in previous if item != ev.item_id and ev.ts - ts <= cfg.co_view_window_s]
            out.co_views += [(ev.item_id, other) for other in dict.fromkeys(partners[:cfg.co_view_recent])]
        if value > 0:
            bucket = int(ev.ts // cfg.trending_bucket_s)
            out.trending[(bucket, ev.item_id)] = out.trending.get((bucket, ev.item_id), 0.0) + value
        ref = _add_interest(interests, ref, ev, value, catalogue, cfg.interest_half_life_s)
        session_id = _add_session(sessions, session_id, ev, cfg)
        if x is not None:
            x = model.fold.update(x, ev.item_id, value)
        previous.insert(0, (ev.item_id, ev.ts))
    kept = dict(sorted(interests.items(), key=lambda kv: -kv[1])[:cfg.max_interests])
    out.profile = {
        rk.PROFILE_EVENTS: int(state.profile.get(rk.PROFILE_EVENTS) or 0) + len(events),
        rk.PROFILE_SESSIONS: sessions[:cfg.max_sessions],
    }
    if session_id:
        out.profile[rk.PROFILE_SESSION_ID] = session_id
    if purchased:
        out.profile[rk.PROFILE_PURCHASED] = list(purchased)[-cfg.purchased_max:]
    if cart:
        out.profile[rk.PROFILE_CART] = list(cart)[-cfg.purchased_max:]
    if kept:
        whole = int(ref)  # stored in whole seconds: the weights are moved to that time
        shift = 2.0 ** ((ref - whole) / cfg.interest_half_life_s)
        out.profile[rk.PROFILE_INTERESTS] = {k: round(v * shift, 2) for k, v in kept.items()}
        out.profile[rk.PROFILE_INTERESTS_TS] = whole
    if x is not None and model is not None:
        out.vector = encode_vector(x)
        out.profile[rk.PROFILE_MODEL] = model.version
    return out


def fold_items(events: Mapping[str, Sequence[SpeedEvent]], user_vectors: Mapping[str, np.ndarray | None],
               stored: Mapping[str, np.ndarray], items: set[str], model: ModelContext,
               weights: Mapping[str, float], quantity: str = "linear") -> dict[str, np.ndarray]:
    """The live vectors of `items` (ones the batch model lacks) after the events of each user, folded in
    with the user's vector; starts from the stored vector, else zeros. Only the items that moved."""
    fold = model.item_fold
    if fold is None or not items:
        return {}
    out: dict[str, np.ndarray] = {}
    for user, user_events in events.items():
        x = user_vectors.get(user)
        for ev in user_events:
            if ev.item_id not in items:
                continue
            y = out.get(ev.item_id)
            if y is None:
                y = np.asarray(stored.get(ev.item_id, np.zeros(fold.rank)), dtype=np.float64)
            moved = fold.update(y, x, event_strength(ev.event_type, ev.quantity, weights, quantity))
            if moved is not y:
                out[ev.item_id] = moved
    return out


def _move_to_end(ordered: dict[str, None], item: str) -> None:
    ordered.pop(item, None)
    ordered[item] = None


def _start_vector(user_id: str, state: UserState, model: ModelContext, weights: Mapping[str, float]) -> np.ndarray:
    """The stored vector when it belongs to this model; else the batch vector (or zeros) with the
    recently seen items folded in again, so a model hand-over keeps what the stream learned."""
    if state.profile.get(rk.PROFILE_MODEL) == model.version:
        stored = decode_vector(state.vector, model.fold.rank)
        if stored is not None:
            return stored
    x = model.user_vector(user_id)
    x = np.zeros(model.fold.rank) if x is None else np.asarray(x, dtype=np.float64)
    return model.fold.fold(x, [item for item, _ in reversed(state.recent)],  # oldest first, as they happened
                           weights.get("view", 1.0))


def _add_interest(interests: dict[str, float], ref: float, ev: SpeedEvent, value: float,
                  catalogue: Mapping[str, tuple[str | None, str | None]], half_life_s: float) -> float:
    """Add one event's weight to the item's category and brand; returns the new reference time."""
    category, brand = catalogue.get(ev.item_id, (None, None))
    if value == 0 or (category is None and brand is None):
        return ref
    if ev.ts > ref:  # move every weight forward to the newer reference time
        factor = decay(1.0, ev.ts - ref, half_life_s) if ref else 1.0
        for key in interests:
            interests[key] *= factor
        ref = ev.ts
    added = decay(value, ref - ev.ts, half_life_s)  # an event older than the reference counts less
    for key in (rk.interest_key(rk.INTEREST_CATEGORY, category) if category else None,
                rk.interest_key(rk.INTEREST_BRAND, brand) if brand else None):
        if key:
            weight = interests.get(key, 0.0) + added
            if weight > 0:
                interests[key] = weight
            else:
                interests.pop(key, None)
    return ref


def _add_session(sessions: list[list], session_id: str | None, ev: SpeedEvent, cfg: StreamConfig) -> str | None:
    """Sessions as [first_ts, seconds, events], latest first; returns the current session's id.

    An event with a session id continues the session of that id; one without continues the latest
    session unless it comes more than stream.session_gap_s after its last event.
    """
    head = sessions[0] if sessions else None
    if ev.session_id:
        same = head is not None and ev.session_id == session_id
    else:
        same = head is not None and ev.ts - (head[0] + head[1]) <= cfg.session_gap_s
    if same:
        head[1], head[2] = max(head[1], int(ev.ts) - head[0]), head[2] + 1
        return session_id
    sessions.insert(0, [int(ev.ts), 0, 1])
    return ev.session_id
