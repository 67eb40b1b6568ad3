"""Apply events to Redis from the executors, exactly once per chunk of a micro-batch.

Each chunk of a partition is one optimistic transaction: WATCH its applied-marker and the profiles
it will rewrite, skip it when the marker exists (a replayed batch), read the users' state, compute
the updates (recsys.speed.adjustments), then MULTI/EXEC the writes together with the marker. A
concurrent writer of the same profile aborts the EXEC and the chunk is recomputed. Redis being
unavailable is retried with backoff for stream.redis_retry_s; after that the error fails the batch,
the query restarts from its checkpoint and the replay applies what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import redis

from recsys.config import Settings
from recsys.contracts.redis_keys import RedisKeys, encode_profile
from recsys.redis_client import redis_client
from recsys.speed.adjustments import ModelContext, SpeedEvent, UserState, UserUpdate, update_user
from recsys.speed.wire import WireDecoder
from recsys.stores.profile_reader import read_profiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkId:
    query_id: str
    batch_id: int
    partition: int
    chunk: int


@dataclass
class ApplyStats:
    """What one partition did; the driver sums these for the stream's progress record."""

    events: int = 0
    rejected: int = 0  # records the contract rejects (the bronze query quarantines them)
    applied: int = 0
    replayed: int = 0  # events of chunks found already applied
    lag_sum_s: float = 0.0
    lag_max_s: float = 0.0

    def add(self, other: ApplyStats) -> ApplyStats:
        return ApplyStats(self.events + other.events, self.rejected + other.rejected, self.applied + other.applied,
                          self.replayed + other.replayed, self.lag_sum_s + other.lag_sum_s,
                          max(self.lag_max_s, other.lag_max_s))


class RedisStateWriter:
    def __init__(self, settings: Settings, catalogue: Mapping[str, tuple[str | None, str | None]],
                 model: ModelContext | None, client: redis.Redis | None = None) -> None:
        self._settings = settings
        self._cfg = settings.stream
        self._keys = RedisKeys(settings.redis.key_prefix)
        self._catalogue = catalogue
        self._model = model
        self._client = client or redis_client(settings.redis, settings.redis.writer_timeout_s)

    def close(self) -> None:
        self._client.close()

    def apply(self, events: Iterable[SpeedEvent], query_id: str, batch_id: int, partition: int) -> ApplyStats:
        """Apply a partition's events in chunks of stream.redis_chunk, in arrival order."""
        stats, chunk, n = ApplyStats(), [], 0
        for ev in events:
            chunk.append(ev)
            if len(chunk) >= self._cfg.redis_chunk:
                stats = stats.add(self._apply_with_retry(chunk, ChunkId(query_id, batch_id, partition, n)))
                chunk, n = [], n + 1
        if chunk:
            stats = stats.add(self._apply_with_retry(chunk, ChunkId(query_id, batch_id, partition, n)))
        return stats

    def _apply_with_retry(self, chunk: list[SpeedEvent], cid: ChunkId) -> ApplyStats:
        deadline, attempt = time.monotonic() + self._cfg.redis_retry_s, 0
        while True:
            try:
                return self._apply_chunk(chunk, cid)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() >= deadline:
                    raise
                attempt += 1
                log.warning("Redis unavailable (%s), retrying chunk %s (attempt %d)", exc, cid, attempt)
                time.sleep(min(0.1 * 2**attempt, 2.0))

    def _apply_chunk(self, chunk: list[SpeedEvent], cid: ChunkId) -> ApplyStats:
        marker = self._keys.applied_marker(cid.query_id, cid.batch_id, cid.partition, cid.chunk)
        by_user: dict[str, list[SpeedEvent]] = {}
        for ev in chunk:
            by_user.setdefault(ev.user_id, []).append(ev)
        for events in by_user.values():
            events.sort(key=lambda e: e.ts)
        users = list(by_user)
        with self._client.pipeline(transaction=True) as tx:
            while True:
                try:
                    tx.watch(marker, *(self._keys.profile(u) for u in users))
                    if tx.exists(marker):
                        tx.reset()
                        return ApplyStats(events=len(chunk), replayed=len(chunk))
                    states = self._read(users)
                    updates = {u: update_user(by_user[u], states[u], self._cfg, self._settings.events.weights,
                                              self._catalogue, self._model) for u in users}
                    tx.multi()
                    self._write(tx, updates)
                    tx.set(marker, 1, ex=self._cfg.marker_ttl_s)
                    tx.execute()
                    break
                except redis.WatchError:
                    continue  # another writer changed one of these profiles: read again
        applied_at = time.time()
        lags = [applied_at - ev.ts for ev in chunk]
        return ApplyStats(events=len(chunk), applied=len(chunk), lag_sum_s=sum(lags), lag_max_s=max(lags))

    def _read(self, users: list[str]) -> dict[str, UserState]:
        stored = read_profiles(self._client, self._keys, users, self._settings.redis.recent_items_max)
        return {user: UserState(p.fields, p.vector, p.recent) for user, p in stored.items()}

    def _write(self, tx: redis.client.Pipeline, updates: dict[str, UserUpdate]) -> None:
        keys, cfg, ttl = self._keys, self._cfg, self._settings.redis.user_ttl_s
        trending: dict[tuple[int, str], float] = {}
        co_views: dict[tuple[str, str], int] = {}
        for user, up in updates.items():
            tx.set(keys.profile(user), encode_profile(up.profile, up.vector), ex=ttl)
            if up.recent:
                tx.zadd(keys.recent_items(user), up.recent, gt=True)
                tx.zremrangebyrank(keys.recent_items(user), 0, -(self._settings.redis.recent_items_max + 1))
                tx.expire(keys.recent_items(user), ttl)
            for key, weight in up.trending.items():
                trending[key] = trending.get(key, 0.0) + weight
            for a, b in up.co_views:
                for pair in ((a, b), (b, a)):
                    co_views[pair] = co_views.get(pair, 0) + 1
        buckets: set[int] = set()
        for (bucket, item), weight in trending.items():
            tx.zincrby(keys.trending_bucket(bucket), weight, item)
            buckets.add(bucket)
        for bucket in buckets:
            tx.expire(keys.trending_bucket(bucket), cfg.trending_bucket_s * (cfg.trending_buckets + 1))
        touched: set[str] = set()
        for (item, other), count in co_views.items():
            tx.zincrby(keys.co_views(item), count, other)
            touched.add(item)
        for item in touched:
            tx.zremrangebyrank(keys.co_views(item), 0, -(cfg.co_views_max + 1))
            tx.expire(keys.co_views(item), cfg.co_view_ttl_s)


def apply_arrow(batches: Iterator, settings: Settings, catalogue: Mapping[str, tuple[str | None, str | None]],
                model: ModelContext | None, query_id: str, batch_id: int, partition: int) -> ApplyStats:
    """Arrow record batches of Kafka values -> validated events -> Redis, in arrival order."""
    decoder = WireDecoder(settings.events.min_ts, settings.events.max_future_skew_s)
    values = (value for batch in batches for value in batch.column("value").to_pylist())
    writer = RedisStateWriter(settings, catalogue, model)
    try:
        stats = writer.apply(decoder.decode(values), query_id, batch_id, partition)
    finally:
        writer.close()
    stats.rejected = decoder.rejected
    return stats
