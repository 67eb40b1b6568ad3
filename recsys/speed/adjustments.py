"""What one user's new events change in their real-time state: pure logic, no I/O.

The Redis writer reads a user's current state, calls `update_user` and writes the result in one
transaction; tests call `update_user` directly. Interests decay exponentially: weights are stored as
of one reference time and multiplied by 2^(-elapsed / half-life) whenever they are read or updated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.config import StreamConfig
from recsys.contracts import redis_keys as rk
from recsys.speed.foldin import FoldIn, decode_vector, encode_vector

POSITIVE_CO_VIEW_EVENTS = ("view", "click", "add_to_cart")


@dataclass(frozen=True)
class SpeedEvent:
    user_id: str
    item_id: str
    event_type: str
    ts: float  # epoch seconds
    session_id: str | None = None
    quantity: int = 1


@dataclass(frozen=True)
class ModelContext:
    """The published model the stream folds events into (None fields: no model published yet)."""

    version: str
    fold: FoldIn
    user_vector: Callable[[str], np.ndarray | None]  # the batch vector of a user the model knows


@dataclass(frozen=True)
class UserState:
    profile: Mapping[str, bytes]  # the profile HASH as stored
    recent: Sequence[tuple[str, float]]  # (item, ts), latest first


@dataclass
class UserUpdate:
    profile: dict[str, bytes | str | int] = field(default_factory=dict)
    recent: dict[str, int] = field(default_factory=dict)
    purchased: set[str] = field(default_factory=set)
    cart_add: set[str] = field(default_factory=set)
    cart_remove: set[str] = field(default_factory=set)
    co_views: list[tuple[str, str]] = field(default_factory=list)
    trending: dict[tuple[int, str], float] = field(default_factory=dict)


def decay(weight: float, elapsed_s: float, half_life_s: float) -> float:
    return weight * 2.0 ** (-max(elapsed_s, 0.0) / half_life_s)


def current_interests(profile: Mapping[str, bytes | str], now: float, half_life_s: float) -> dict[str, float]:
    """Interest weights decayed to `now` (what serving reads)."""
    raw, ref = profile.get(rk.PROFILE_INTERESTS), profile.get(rk.PROFILE_INTERESTS_TS)
    if not raw or ref is None:
        return {}
    factor = decay(1.0, now - float(ref), half_life_s)
    return {key: weight * factor for key, weight in json.loads(raw).items()}


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def update_user(events: Sequence[SpeedEvent], state: UserState, cfg: StreamConfig, weights: Mapping[str, float],
                catalogue: Mapping[str, tuple[str | None, str | None]], model: ModelContext | None) -> UserUpdate:
    """The writes that apply `events` (one user's, oldest first) to `state`."""
    out = UserUpdate()
    previous = list(state.recent)  # latest first; grows with this batch's events for co-views
    ref = float(state.profile.get(rk.PROFILE_INTERESTS_TS) or 0.0)
    interests = current_interests(state.profile, ref, cfg.interest_half_life_s) if ref else {}
    sessions = json.loads(state.profile.get(rk.PROFILE_SESSIONS) or "[]")
    x = _start_vector(events[0].user_id, state, model, weights) if model and events else None
    for ev in events:
        value = weights.get(ev.event_type, 0.0) * (ev.quantity if ev.event_type == "purchase" else 1)
        # Whole seconds: Redis stores integer scores in a few bytes, a fractional one as text.
        out.recent[ev.item_id] = max(int(ev.ts), out.recent.get(ev.item_id, 0))
        if ev.event_type == "purchase":
            out.purchased.add(ev.item_id)
            out.cart_remove.add(ev.item_id)
            out.cart_add.discard(ev.item_id)
        elif ev.event_type == "add_to_cart":
            out.cart_add.add(ev.item_id)
            out.cart_remove.discard(ev.item_id)
        elif ev.event_type == "remove_from_cart":
            out.cart_remove.add(ev.item_id)
            out.cart_add.discard(ev.item_id)
        if ev.event_type in POSITIVE_CO_VIEW_EVENTS:
            partners = [item for item, ts in previous if item != ev.item_id and ev.ts - ts <= cfg.co_view_window_s]
            out.co_views += [(ev.item_id, other) for other in dict.fromkeys(partners[:cfg.co_view_recent])]
        if value > 0:
            bucket = int(ev.ts // cfg.trending_bucket_s)
            out.trending[(bucket, ev.item_id)] = out.trending.get((bucket, ev.item_id), 0.0) + value
        ref = _add_interest(interests, ref, ev, value, catalogue, cfg.interest_half_life_s)
        _add_session(sessions, ev, cfg)
        if x is not None:
            x = model.fold.update(x, ev.item_id, value)
        previous.insert(0, (ev.item_id, ev.ts))
    kept = dict(sorted(interests.items(), key=lambda kv: -kv[1])[:cfg.max_interests])
    out.profile = {
        rk.PROFILE_EVENTS: int(state.profile.get(rk.PROFILE_EVENTS) or 0) + len(events),
        rk.PROFILE_SESSIONS: json.dumps(sessions[:cfg.max_sessions], separators=(",", ":")),
    }
    if kept:
        out.profile[rk.PROFILE_INTERESTS] = json.dumps({k: round(v, 4) for k, v in kept.items()},
                                                       separators=(",", ":"))
        out.profile[rk.PROFILE_INTERESTS_TS] = f"{ref:.3f}"
    if x is not None and model is not None:
        out.profile[rk.PROFILE_VECTOR] = encode_vector(x)
        out.profile[rk.PROFILE_MODEL] = model.version
    return out


def _start_vector(user_id: str, state: UserState, model: ModelContext, weights: Mapping[str, float]) -> np.ndarray:
    """The stored vector when it belongs to this model; else the batch vector (or zeros) with the
    recently seen items folded in again, so a model hand-over keeps what the stream learned."""
    if _text(state.profile.get(rk.PROFILE_MODEL)) == model.version:
        stored = decode_vector(state.profile.get(rk.PROFILE_VECTOR), model.fold.rank)
        if stored is not None:
            return stored
    x = model.user_vector(user_id)
    x = np.zeros(model.fold.rank) if x is None else np.asarray(x, dtype=np.float64)
    for item, _ in reversed(state.recent):  # oldest first, as they happened
        x = model.fold.update(x, item, weights.get("view", 1.0))
    return x


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
    for key in (f"c:{category}" if category else None, f"b:{brand}" if brand else None):
        if key:
            weight = interests.get(key, 0.0) + added
            if weight > 0:
                interests[key] = weight
            else:
                interests.pop(key, None)
    return ref


def _add_session(sessions: list[list], ev: SpeedEvent, cfg: StreamConfig) -> None:
    """Sessions as [id, first_ts, last_ts, events], latest first: the event's own session id when it
    has one, else a gap longer than stream.session_gap_s starts a new one."""
    head = sessions[0] if sessions else None
    same = head is not None and (head[0] == ev.session_id if ev.session_id
                                 else ev.ts - head[2] <= cfg.session_gap_s)
    if same:
        head[2], head[3] = max(head[2], int(ev.ts)), head[3] + 1
    else:
        sessions.insert(0, [ev.session_id or f"t{int(ev.ts)}", int(ev.ts), int(ev.ts), 1])
