"""Real-time user state for serving: an interface and its Redis implementation."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import redis
from redis.exceptions import NoScriptError

from recsys.config import RedisConfig
from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import RedisKeys, current_interests, decode_profile, decode_vector
from recsys.redis_client import redis_client
from recsys.stores.pending_events import PendingEvent, RedisPendingEvents
from recsys.stores.profile_reader import parse_profiles, queue_profile_reads
from recsys.stores.redis_breaker import guard, redis_breaker


@dataclass(frozen=True)
class RealtimeState:
    """What the speed layer knows about one user, read in one round trip."""

    recent: list[str] = field(default_factory=list)  # newest first
    purchased: frozenset[str] = frozenset()
    cart: list[str] = field(default_factory=list)  # latest last
    interests: dict[str, float] = field(default_factory=dict)  # "c:<category>" / "b:<brand>", decayed, strongest first
    vector: np.ndarray | None = None  # folded-in vector, only when computed against the served version
    erased_at: float | None = None  # the user was forgotten then (deny-list): older batch factors are not theirs to use
    pending: tuple[PendingEvent, ...] = ()  # acknowledged events the fields above do not include yet, oldest first


@dataclass(frozen=True)
class ItemSignals:
    """Live item-to-item and global signals, read in one round trip."""

    co_views: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # item -> partners, strongest first
    trending: list[tuple[str, float]] = field(default_factory=list)  # strongest first


# One request's whole read in one round trip: the user's recent items, profile and erasure time, the trending
# view, and the co-views of the newest recent items (which the first read names, so a pipeline would need two
# trips). The co-view keys are built inside the script: fine on one Redis, not on Redis Cluster.
REQUEST_SCRIPT = """
local recent = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local profile = redis.call('GET', KEYS[2])
local erased = redis.call('HGET', KEYS[3], ARGV[1])
local trending = {}
if tonumber(ARGV[5]) > 0 then
  trending = redis.call('ZREVRANGE', KEYS[4], 0, tonumber(ARGV[5]) - 1, 'WITHSCORES')
end
local co_views = {}
for i = 1, math.min(#recent, tonumber(ARGV[3])) do
  co_views[i] = redis.call('ZREVRANGE', ARGV[6] .. recent[i] .. ARGV[7], 0, tonumber(ARGV[4]) - 1, 'WITHSCORES')
end
return {recent, profile, erased, trending, co_views}
"""
REQUEST_SHA = hashlib.sha1(REQUEST_SCRIPT.encode()).hexdigest()  # what EVALSHA names it by


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _scored(flat: list) -> list[tuple[str, float]]:
    """A WITHSCORES reply as the script returns it (member, score, member, score, ...)."""
    members = flat[0::2]
    if members and isinstance(members[0], bytes):
        members = [member.decode() for member in members]
    return list(zip(members, map(float, flat[1::2]), strict=True))


class OnlineStore(Protocol):
    def recent_items(self, user_id: str, limit: int) -> list[str]: ...

    def purchased(self, user_id: str) -> set[str]: ...

    def user_vector(self, user_id: str, model_version: str, rank: int) -> np.ndarray | None: ...

    def user_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                   half_life_s: float) -> RealtimeState: ...

    def item_signals(self, item_ids: Sequence[str], co_view_k: int, trending_k: int) -> ItemSignals: ...

    def request_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                      half_life_s: float, co_view_sources: int, co_view_k: int,
                      trending_k: int) -> tuple[RealtimeState, ItemSignals]: ...

    def trending(self, k: int) -> list[tuple[str, float]]: ...

    def ping(self) -> bool: ...


@dataclass(frozen=True)
class _TrendingView:
    read_at: float  # time.monotonic()
    k: int  # how many were asked for (the view may hold fewer)
    items: list[tuple[str, float]]


class RedisOnlineStore:
    """Reads the keys the speed layer writes (recsys.contracts.redis_keys) over pooled clients."""

    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None, raw_client: redis.Redis | None = None,
                 pending: RedisPendingEvents | None = None, trending_cache_s: float = 0.0) -> None:
        self._keys = RedisKeys(cfg.key_prefix)
        self._trending_cache_s = trending_cache_s  # serving.trending_cache_s: one view for every request meanwhile
        self._trending: _TrendingView | None = None
        self._pending = pending  # read your own writes: also read the user's pending events (None: not)
        breaker = redis_breaker(cfg)  # an unreachable Redis fails fast after a few timeouts (redis.breaker_*)
        self._client = client or guard(redis_client(cfg, decode=True), breaker)
        self._raw = raw_client or guard(redis_client(cfg), breaker)  # the vector is bytes, not text
        head, _, tail = self._keys.co_views("\0").partition("\0")
        self._co_view_key = (head, tail)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        """Most recent first."""
        return list(self._client.zrevrange(self._keys.recent_items(user_id), 0, limit - 1))

    def purchased(self, user_id: str) -> set[str]:
        return set(self.profile(user_id)[0].get(rk.PROFILE_PURCHASED, []))

    def cart(self, user_id: str) -> list[str]:
        """Items in the cart, latest last."""
        return list(self.profile(user_id)[0].get(rk.PROFILE_CART, []))

    def profile(self, user_id: str) -> tuple[dict, bytes | None]:
        """The speed layer's profile of a user: (JSON fields, folded-in vector bytes)."""
        return decode_profile(self._raw.get(self._keys.profile(user_id)))

    def user_vector(self, user_id: str, model_version: str, rank: int) -> np.ndarray | None:
        """The folded-in vector, only when it was computed against `model_version`."""
        fields, vector = self.profile(user_id)
        if fields.get(rk.PROFILE_MODEL) != model_version:
            return None
        return decode_vector(vector, rank)

    def user_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                   half_life_s: float) -> RealtimeState:
        """Recent items, purchases, cart, interests (decayed to now), the vector of `model_version` and the
        pending events the stream has not applied yet: one MULTI, so a request pays one round trip for the whole
        user and the pending events and the state they are checked against are one snapshot."""
        pipe = self._raw.pipeline(transaction=self._pending is not None and self._pending.enabled)
        queue_profile_reads(pipe, self._keys, [user_id], recent_limit, times=False)
        extra = self._pending.queue_read(pipe, user_id) if self._pending is not None else 0
        replies = pipe.execute()
        stored = parse_profiles(replies, [user_id], times=False)[user_id]
        fields = stored.fields
        pending = () if not extra else self._pending.unapplied(replies[-extra:], fields.get(rk.PROFILE_EVENT_IDS),
                                                                  stored.erased_at)
        live = None
        if model_version is not None and fields.get(rk.PROFILE_MODEL) == model_version:
            live = decode_vector(stored.vector, rank)
        weights = current_interests(fields, time.time(), half_life_s)
        return RealtimeState(
            recent=[item for item, _ in stored.recent],
            purchased=frozenset(fields.get(rk.PROFILE_PURCHASED, [])),
            cart=list(fields.get(rk.PROFILE_CART, [])),
            interests=dict(sorted(weights.items(), key=lambda kv: -kv[1])),
            vector=live,
            erased_at=stored.erased_at,
            pending=pending,
        )

    def request_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                      half_life_s: float, co_view_sources: int, co_view_k: int,
                      trending_k: int) -> tuple[RealtimeState, ItemSignals]:
        """user_state (with the pending events) and item_signals (co-views of the co_view_sources newest recent
        items, the trending view) in one round trip: the pending reads and one Lua script (REQUEST_SCRIPT)."""
        keys = [self._keys.recent_items(user_id), self._keys.profile(user_id), self._keys.erased_users(),
                self._keys.trending()]
        cached = self._cached_trending(trending_k)
        args = [user_id, recent_limit, co_view_sources if co_view_k > 0 else 0, co_view_k,
                0 if cached is not None else trending_k, *self._co_view_key]
        try:
            replies, extra = self._request_round_trip(user_id, keys, args)
        except NoScriptError:  # Redis lost its scripts (a restart, SCRIPT FLUSH): load it and ask once more
            self._raw.script_load(REQUEST_SCRIPT)
            replies, extra = self._request_round_trip(user_id, keys, args)
        recent, raw, erased_at, trending, co_views = replies[-1]
        recent = [_text(item) for item in recent]
        fields, vector = decode_profile(raw)
        erased = None if erased_at is None else float(erased_at)
        pending = () if not extra else self._pending.unapplied(replies[:extra], fields.get(rk.PROFILE_EVENT_IDS),
                                                                  erased)
        live = None
        if model_version is not None and fields.get(rk.PROFILE_MODEL) == model_version:
            live = decode_vector(vector, rank)
        weights = current_interests(fields, time.time(), half_life_s)
        state = RealtimeState(
            recent=recent, purchased=frozenset(fields.get(rk.PROFILE_PURCHASED, [])),
            cart=list(fields.get(rk.PROFILE_CART, [])),
            interests=dict(sorted(weights.items(), key=lambda kv: -kv[1])), vector=live,
            erased_at=erased, pending=pending)
        if cached is None:
            cached = _scored(trending)
            if trending_k > 0:
                self._trending = _TrendingView(time.monotonic(), trending_k, cached)
        signals = ItemSignals({item: _scored(reply) for item, reply in zip(recent, co_views, strict=False)}, cached)
        return state, signals

    def _cached_trending(self, k: int) -> list[tuple[str, float]] | None:
        """The trending view read by an earlier request of this process, while serving.trending_cache_s lasts:
        the stream rebuilds it only every stream.trending_refresh_s, and it is the largest part of a read."""
        view = self._trending
        if k <= 0:
            return []
        if view is None or view.k < k or time.monotonic() - view.read_at >= self._trending_cache_s:
            return None
        return view.items if k == view.k else view.items[:k]  # the same list: its rows are memoised by identity

    def _request_round_trip(self, user_id: str, keys: list[str], args: list) -> tuple[list, int]:
        """One pipeline: the pending reads, then REQUEST_SCRIPT by its digest. EVALSHA is queued as it is, not
        through redis-py's Script, whose pipelines ask SCRIPT EXISTS first: a second round trip per request."""
        pipe = self._raw.pipeline(transaction=False)
        # The pending list is read before the state: an event the stream applies in between is then in the
        # state's dedupe ids and dropped from the overlay, so it still counts once.
        extra = self._pending.queue_read(pipe, user_id) if self._pending is not None else 0
        pipe.evalsha(REQUEST_SHA, len(keys), *keys, *args)
        return pipe.execute(), extra

    def item_signals(self, item_ids: Sequence[str], co_view_k: int, trending_k: int) -> ItemSignals:
        """The co-views of several items and the trending view in one pipeline (none when nothing is asked)."""
        items = list(dict.fromkeys(item_ids)) if co_view_k > 0 else []
        if not items and trending_k <= 0:
            return ItemSignals()
        pipe = self._client.pipeline(transaction=False)
        for item in items:
            pipe.zrevrange(self._keys.co_views(item), 0, co_view_k - 1, withscores=True)
        if trending_k > 0:
            pipe.zrevrange(self._keys.trending(), 0, trending_k - 1, withscores=True)
        replies = pipe.execute()
        co_views = {item: [(other, float(score)) for other, score in reply]
                    for item, reply in zip(items, replies, strict=False)}
        trending = [(item, float(score)) for item, score in replies[-1]] if trending_k > 0 else []
        return ItemSignals(co_views, trending)

    def interests(self, user_id: str, half_life_s: float) -> dict[str, float]:
        """Category ("c:...") and brand ("b:...") interests decayed to now, strongest first."""
        weights = current_interests(self.profile(user_id)[0], time.time(), half_life_s)
        return dict(sorted(weights.items(), key=lambda kv: -kv[1]))

    def trending(self, k: int) -> list[tuple[str, float]]:
        return [(item, float(score)) for item, score in
                self._client.zrevrange(self._keys.trending(), 0, k - 1, withscores=True)]

    def co_views(self, item_id: str, k: int) -> list[tuple[str, float]]:
        return [(item, float(score)) for item, score in
                self._client.zrevrange(self._keys.co_views(item_id), 0, k - 1, withscores=True)]

    def stream_progress(self, query: str) -> dict[str, str]:
        """The speed layer's last progress record of one query (recsys.speed.stream.record_progress)."""
        return self._client.hgetall(self._keys.stream_progress(query))

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False
