"""What the user-data endpoints do: show a user's history (GET /v1/users/<id>/history) and forget a user
(DELETE /v1/users/<id>). The API views only translate HTTP to these calls.

History merges the two layers like recommendations do: the speed layer's state in Redis and, when asked,
the user's recorded events in bronze. One layer being down makes the answer degraded, not an error.
Forgetting is the opposite: it must not half-succeed silently, so any failure raises and the caller
retries (every step is idempotent).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from recsys.config import Settings
from recsys.contracts import redis_keys as rk
from recsys.contracts.catalogue import check_id
from recsys.stores.erasure_store import DeltaErasureStore, ErasureStore
from recsys.stores.event_log import DeltaEventLog, EventLog
from recsys.stores.user_state import RedisUserStateStore, StoredUserState, UserStateStore

log = logging.getLogger(__name__)

REDIS, DELTA = "redis", "delta"  # the sources a history reads, as named in `unavailable`


class HistoryUnavailableError(RuntimeError):
    """Every source the history needed failed (503 material)."""


@dataclass(frozen=True)
class UserHistory:
    user_id: str
    realtime: dict[str, Any] | None  # None when Redis could not be read
    events: list[dict[str, Any]] | None  # None when not asked for or bronze could not be read
    unavailable: tuple[str, ...] = field(default=())

    @property
    def degraded(self) -> bool:
        return bool(self.unavailable)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 UTC strings."""
        events = None if self.events is None else [
            {**e, "ts": _iso(e["ts"]) if isinstance(e.get("ts"), datetime) else e.get("ts")} for e in self.events]
        return {"user_id": self.user_id, "realtime": self.realtime, "events": events,
                "degraded": self.degraded, "unavailable": list(self.unavailable)}


class UserDataService:
    """History and erasure over the stores; the defaults are the production stores of `settings`."""

    def __init__(self, settings: Settings, state: UserStateStore | None = None, log_store: EventLog | None = None,
                 lake: ErasureStore | None = None) -> None:
        self._settings = settings
        self._state = state or RedisUserStateStore(settings.redis)
        self._log = log_store or DeltaEventLog(settings)
        self._lake = lake or DeltaErasureStore(settings)

    def history(self, user_id: str, limit: int = 0, now: float | None = None) -> UserHistory:
        """The user's real-time state and, when limit > 0, their `limit` newest bronze events.

        ValueError for an invalid id or a limit above delta_rs.max_history_events; HistoryUnavailableError
        when every source asked for failed. A user nobody has seen gets an empty history, not an error.
        """
        check_id(user_id)
        most = self._settings.delta_rs.max_history_events
        if not 0 <= limit <= most:
            raise ValueError(f"limit {limit} outside 0..{most} (delta_rs.max_history_events)")
        unavailable: list[str] = []
        realtime = None
        try:
            realtime = realtime_view(self._state.state(user_id), time.time() if now is None else now,
                                     self._settings.stream.interest_half_life_s)
        except redis.RedisError as exc:
            log.warning("history of %s without real-time state: %s", user_id, exc)
            unavailable.append(REDIS)
        events = None
        if limit:
            try:
                events = self._log.latest_events(user_id, limit)
            except Exception:  # any failure of the lake read degrades the answer; logged in full
                log.warning("history of %s without bronze events", user_id, exc_info=True)
                unavailable.append(DELTA)
        if realtime is None and events is None:
            raise HistoryUnavailableError(f"no source of {user_id}'s history is available: {unavailable}")
        return UserHistory(user_id, realtime, events, tuple(unavailable))

    def forget_user(self, user_id: str) -> dict[str, Any]:
        """Erase the user everywhere the contracts keep them; returns what was removed,
        {"redis_keys": n, "delta_rows": {table: n}}.

        The erasure is recorded first, so events still in Kafka stay out of training even if a later step
        fails; then the deny-list entry (the stream and serving check it) with the Redis keys, in one
        transaction, then the Delta rows. Raises (RedisError, CommitConflictError, ...) on any
        failure; calling it again finishes the job.
        """
        check_id(user_id)
        erased_at = datetime.now(UTC)
        self._lake.record_erasure(user_id, erased_at)
        redis_keys = self._state.forget(user_id, erased_at.timestamp())
        delta_rows = self._lake.delete_user_rows(user_id)
        log.info("forgot user %s: %d Redis keys, Delta rows %s", user_id, redis_keys, delta_rows)
        return {"redis_keys": redis_keys, "delta_rows": delta_rows}


def realtime_view(state: StoredUserState, now: float, interest_half_life_s: float) -> dict[str, Any]:
    """The speed layer's state of a user in plain terms (field meanings: docs/contracts.md, per-user keys)."""
    profile = state.profile
    sessions = [{"started_at": _iso(first), "last_at": _iso(first + seconds), "seconds": seconds, "events": n}
                for first, seconds, n in profile.get(rk.PROFILE_SESSIONS, [])]
    if sessions and profile.get(rk.PROFILE_SESSION_ID):
        sessions[0]["session_id"] = profile[rk.PROFILE_SESSION_ID]  # only the latest session's id is kept
    interests = sorted(rk.current_interests(profile, now, interest_half_life_s).items(), key=lambda kv: -kv[1])
    return {
        "recent": [{"item_id": item, "ts": _iso(ts)} for item, ts in state.recent],
        "sessions": sessions,
        "purchases": list(profile.get(rk.PROFILE_PURCHASED, [])),
        "cart": list(profile.get(rk.PROFILE_CART, [])),
        "interests": [_interest(key, weight) for key, weight in interests],
        "events_applied": int(profile.get(rk.PROFILE_EVENTS, 0)),
        "model_version": profile.get(rk.PROFILE_MODEL),
        "has_vector": state.has_vector,
    }


def _interest(key: str, weight: float) -> dict[str, Any]:
    prefix, value = rk.split_interest(key)
    return {"kind": rk.INTEREST_KINDS.get(prefix, prefix), "value": value, "weight": weight}


def _iso(value: float | datetime) -> str:
    when = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
