"""Read your own writes: each shopper's events that Kafka acknowledged but the stream may not have applied yet.

POST /v1/events records every acknowledged event in the user's pending LIST (newest first, at most
redis.pending_max, expiring redis.pending_ttl_s after the last write), all users of a request in one pipeline.
Serving reads the list in the same MULTI as the user's profile, together with the stream's offset watermarks,
and keeps only the entries the stream has not applied: an entry counts until the profile holds its id digest
(the stream's dedupe ids) or the watermark of its Kafka partition reaches its offset. Both are written by the
stream in the same transaction as the state, and MULTI reads them as one snapshot, so an event is counted by
the state or by the overlay, never by both. The stream never reads this list and stays the only writer of
durable state; losing the list (Redis down, expiry) only delays what a shopper sees until the stream catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from recsys.config import RedisConfig
from recsys.contracts import redis_keys as rk
from recsys.contracts.events import Event
from recsys.contracts.redis_keys import REALTIME_QUERY, RedisKeys, decode_pending, encode_pending, event_id_digest

if TYPE_CHECKING:
    from recsys.ingest.producer import Delivered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingEvent:
    """One acknowledged event as serving overlays it."""

    digest: str  # event_id_digest(event_id)
    item_id: str
    event_type: str
    ts: float  # epoch seconds
    quantity: int = 1
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class RedisPendingEvents:
    """The pending lists: written by the API after Kafka's acknowledgement, read by RedisOnlineStore."""

    def __init__(self, cfg: RedisConfig, topic: str, partitions: int, client: redis.Redis | None = None) -> None:
        """`client` is the writer's (the API's, with the serving breaker); a reader passes its own pipeline."""
        self._cfg = cfg
        self._keys = RedisKeys(cfg.key_prefix)
        self._topic = topic
        self._watermarks = [self._keys.stream_offset(REALTIME_QUERY, topic, p) for p in range(partitions)]
        self._client = client

    @property
    def enabled(self) -> bool:
        return self._cfg.pending_max > 0

    def record(self, events: Sequence[Event], positions: Sequence[Delivered]) -> bool:
        """Push the acknowledged events to their users' lists in one pipeline; False (logged) when Redis fails:
        the events are in Kafka, so the stream applies them anyway, only later."""
        if not self.enabled or not events or self._client is None:
            return True
        by_user: dict[str, list[str]] = {}
        for event, pos in zip(events, positions, strict=True):
            by_user.setdefault(event.user_id, []).append(encode_pending({
                rk.PENDING_ID: event_id_digest(event.event_id), rk.PENDING_ITEM: event.item_id,
                rk.PENDING_TYPE: event.event_type, rk.PENDING_TS: event.ts.timestamp(),
                rk.PENDING_QUANTITY: event.quantity, rk.PENDING_TOPIC: pos.topic,
                rk.PENDING_PARTITION: pos.partition, rk.PENDING_OFFSET: pos.offset}))
        try:
            with self._client.pipeline(transaction=True) as tx:
                for user, entries in by_user.items():
                    key = self._keys.pending(user)
                    tx.lpush(key, *entries)  # the last pushed ends up first: newest first
                    tx.ltrim(key, 0, self._cfg.pending_max - 1)
                    tx.expire(key, self._cfg.pending_ttl_s)
                tx.execute()
        except redis.RedisError as exc:
            log.warning("pending events of %d users not recorded (the stream still applies them): %s",
                        len(by_user), exc)
            return False
        return True

    def queue_read(self, pipe: redis.client.Pipeline, user_id: str) -> int:
        """Queue the reads of one user's list and the stream's watermarks; returns how many replies they add."""
        if not self.enabled:
            return 0
        pipe.lrange(self._keys.pending(user_id), 0, self._cfg.pending_max - 1)
        pipe.mget(self._watermarks)
        return 2

    def unapplied(self, replies: Sequence, applied_ids: Sequence[str] | None,
                  erased_at: float | None = None) -> tuple[PendingEvent, ...]:
        """The entries the state read in the same MULTI does not include yet, oldest first (each event once)."""
        if not replies:
            return ()
        raw_entries, marks = replies
        watermarks = {(self._topic, p): int(v) for p, v in enumerate(marks) if v is not None}
        return unapplied_events([decode_pending(raw) for raw in raw_entries], watermarks, applied_ids, erased_at)


def unapplied_events(entries: Sequence[dict | None], watermarks: dict[tuple[str, int], int],
                     applied_ids: Sequence[str] | None, erased_at: float | None = None) -> tuple[PendingEvent, ...]:
    """Entries (newest first, as stored) -> the events not yet applied, oldest first, each id once.

    An entry is applied when the profile's dedupe ids hold its digest, or when the stream's watermark of its
    partition is at or past its offset (the stream applies one partition in offset order). Events from before
    the user's erasure never count (an entry recorded just after a DELETE /v1/users/<id> removed the list)."""
    applied = set(applied_ids or ())
    kept: dict[str, PendingEvent] = {}
    for fields in reversed(entries):
        event = _event(fields)
        if event is None or event.digest in applied or event.digest in kept or (
                erased_at is not None and event.ts <= erased_at):
            continue
        mark = watermarks.get((event.topic, event.partition)) if event.partition is not None else None
        if mark is not None and event.offset is not None and event.offset <= mark:
            continue
        kept[event.digest] = event
    return tuple(kept.values())


def _event(fields: dict | None) -> PendingEvent | None:
    try:
        return PendingEvent(str(fields[rk.PENDING_ID]), str(fields[rk.PENDING_ITEM]), str(fields[rk.PENDING_TYPE]),
                            float(fields[rk.PENDING_TS]), int(fields.get(rk.PENDING_QUANTITY) or 1),
                            fields.get(rk.PENDING_TOPIC), fields.get(rk.PENDING_PARTITION),
                            fields.get(rk.PENDING_OFFSET))
    except (KeyError, TypeError, ValueError):
        return None
