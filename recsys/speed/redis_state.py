"""Apply events to Redis from the executors, exactly once per event.

Each chunk of a partition is one optimistic transaction: WATCH its applied-marker (named by the chunk's
Kafka records, not by the Spark task that read them), the Kafka offset watermarks of its partitions, the
erasure deny-list and the profiles it will rewrite; skip it when the marker exists (a replayed batch of the
same query); drop the events at or below their partition's watermark (a replay after the marker expired, or
by a new checkpoint and query id), the events of erased users ingested before their erasure, and the events
whose (user_id, event_id) the user's profile already holds (a client's retry, at another offset); read the
users' state, compute the updates (recsys.speed.adjustments), then MULTI/EXEC the writes together with the
new watermarks and the marker. A concurrent writer of the same profile aborts the EXEC and the chunk is
recomputed. Redis being unavailable is retried with backoff for stream.redis_retry_s; after that the error
fails the batch, the query restarts from its checkpoint and the replay applies what is missing.

The watermark relies on one Spark partition reading one Kafka partition in offset order (the Kafka
source's default; never set minPartitions or maxRecordsPerPartition on this query).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np
import redis

from recsys.config import Settings
from recsys.contracts.redis_keys import (
    PROFILE_EVENT_IDS,
    REALTIME_QUERY,
    RedisKeys,
    decode_vector,
    encode_profile,
    encode_vector,
)
from recsys.contracts.redis_keys import event_id_digest as id_digest  # the digest is the Redis contract's
from recsys.redis_client import redis_client
from recsys.speed.adjustments import ModelContext, SpeedEvent, UserState, UserUpdate, fold_items, update_user
from recsys.speed.wire import WireDecoder
from recsys.stores.live_catalogue import LiveCatalogueStore
from recsys.stores.profile_reader import read_profiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkId:
    query_id: str
    batch_id: int
    partition: int  # the Spark task's partition: a replay may hand it another Kafka partition
    chunk: int

    def records(self, chunk: list[SpeedEvent]) -> str:
        """What the chunk's applied-marker names: its Kafka records (topic, partition, first and last offset)
        when it has them, since Spark numbers a batch's tasks in the order it lists the Kafka partitions and a
        replay may list them in another; else the task's partition and the chunk's place in it."""
        sources = {(ev.topic, ev.partition) for ev in chunk}
        offsets = [ev.offset for ev in chunk if ev.offset is not None]
        if len(sources) == 1 and len(offsets) == len(chunk):
            (topic, partition), = sources
            return f"{topic}/{partition}/{min(offsets)}-{max(offsets)}"
        return f"task{self.partition}/{self.chunk}"


@dataclass
class ApplyStats:
    """What one partition did; the driver sums these for the stream's progress record."""

    events: int = 0
    rejected: int = 0  # records the contract rejects (the bronze query quarantines them)
    applied: int = 0
    replayed: int = 0  # events already applied (a chunk's marker, or at or below the offset watermark)
    lag_sum_s: float = 0.0
    lag_max_s: float = 0.0
    duplicates: int = 0  # a (user_id, event_id) the user's profile already holds: a client's retry
    erased: int = 0  # events of erased users ingested at or before their erasure

    def add(self, other: ApplyStats) -> ApplyStats:
        return ApplyStats(self.events + other.events, self.rejected + other.rejected, self.applied + other.applied,
                          self.replayed + other.replayed, self.lag_sum_s + other.lag_sum_s,
                          max(self.lag_max_s, other.lag_max_s), self.duplicates + other.duplicates,
                          self.erased + other.erased)


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
        marker = self._keys.applied_marker(cid.query_id, cid.batch_id, cid.records(chunk))
        users = list(dict.fromkeys(ev.user_id for ev in chunk))
        parts = list(dict.fromkeys((ev.topic, ev.partition) for ev in chunk if ev.offset is not None))
        offset_keys = [self._keys.stream_offset(REALTIME_QUERY, topic, part) for topic, part in parts]
        erased_key = self._keys.erased_users()
        new_items = self._new_items(chunk)
        live_key = self._keys.live_item_vectors(self._model.version) if new_items and self._model else None
        with self._client.pipeline(transaction=True) as tx:
            while True:
                try:
                    tx.watch(marker, erased_key, *offset_keys, *(self._keys.profile(u) for u in users),
                             *([live_key] if live_key else []))
                    if tx.exists(marker):
                        tx.reset()
                        return ApplyStats(events=len(chunk), replayed=len(chunk))
                    stored = tx.mget(offset_keys) if offset_keys else []
                    marks = {tp: -1 if v is None else int(v) for tp, v in zip(parts, stored, strict=True)}
                    erased_at = {u: float(at) for u, at in zip(users, tx.hmget(erased_key, users), strict=True)
                                 if at is not None}
                    states = self._read(users)
                    admitted, stats = self._admit(chunk, marks, erased_at, states)
                    updates = {u: self._update(u, events, states[u], u in erased_at) for u, events in admitted.items()}
                    items = self._fold_items(tx, live_key, new_items, admitted, updates)
                    tx.multi()
                    self._write(tx, updates)
                    self._write_items(tx, items)
                    for (topic, part), key in zip(parts, offset_keys, strict=True):
                        top = max(ev.offset for ev in chunk if (ev.topic, ev.partition) == (topic, part))
                        if top > marks[(topic, part)]:
                            tx.set(key, top)  # no TTL: it must outlive Kafka's retention
                    tx.set(marker, 1, ex=self._cfg.marker_ttl_s)
                    tx.execute()
                    break
                except redis.WatchError:
                    continue  # another writer changed one of these profiles: read again
        applied_at = time.time()
        lags = [applied_at - ev.ts for events in admitted.values() for ev in events]
        return ApplyStats(events=len(chunk), applied=len(lags), replayed=stats.replayed, lag_sum_s=sum(lags),
                          lag_max_s=max(lags, default=0.0), duplicates=stats.duplicates, erased=stats.erased)

    def _admit(self, chunk: list[SpeedEvent], marks: dict[tuple[str | None, int | None], int],
               erased_at: dict[str, float], states: dict[str, UserState]
               ) -> tuple[dict[str, list[SpeedEvent]], ApplyStats]:
        """The chunk's events to apply, per user oldest first, and the counts of those skipped."""
        skipped, by_user = ApplyStats(), {}
        seen = {u: set(state.profile.get(PROFILE_EVENT_IDS) or ()) for u, state in states.items()}
        now = time.time()
        for ev in chunk:
            if ev.offset is not None and ev.offset <= marks[(ev.topic, ev.partition)]:
                skipped.replayed += 1
            elif ev.user_id in erased_at and (ev.ingested_at or now) <= erased_at[ev.user_id]:
                skipped.erased += 1
            elif ev.event_id is not None and id_digest(ev.event_id) in seen[ev.user_id]:
                skipped.duplicates += 1
            else:
                if ev.event_id is not None:
                    seen[ev.user_id].add(id_digest(ev.event_id))
                by_user.setdefault(ev.user_id, []).append(ev)
        for events in by_user.values():
            events.sort(key=lambda e: e.ts)
        return by_user, skipped

    def _update(self, user: str, events: list[SpeedEvent], state: UserState, erased: bool) -> UserUpdate:
        """update_user, plus the latest stream.dedupe_ids event ids in the profile (retries of them are skipped).
        A user who came back after an erasure is folded in from zeros, not from a batch vector that may have
        been learnt from their erased events."""
        model = self._model
        if erased and model is not None:
            model = replace(model, user_vector=_no_batch_vector)
        update = update_user(events, state, self._cfg, self._settings.events.weights, self._catalogue, model,
                             self._settings.events.quantity)
        ids = [*(state.profile.get(PROFILE_EVENT_IDS) or ()), *(id_digest(ev.event_id) for ev in events if ev.event_id)]
        if ids and self._cfg.dedupe_ids:
            update.profile[PROFILE_EVENT_IDS] = ids[-self._cfg.dedupe_ids:]
        return update

    def _new_items(self, chunk: list[SpeedEvent]) -> set[str]:
        """The chunk's items the model has no factors for but the catalogue lists (Delta's, or the live one
        the API writes): their vectors are folded in. Ids no catalogue lists are never given one."""
        model = self._model
        if model is None or model.item_fold is None:
            return set()
        unknown = {ev.item_id for ev in chunk if ev.item_id not in model.fold.item_index}
        listed = {item for item in unknown if item in self._catalogue}
        rest = sorted(unknown - listed)
        return listed | (LiveCatalogueStore(self._client, self._keys.prefix).listed(rest) if rest else set())

    def _fold_items(self, tx: redis.client.Pipeline, live_key: str | None, items: set[str],
                    admitted: dict[str, list[SpeedEvent]], updates: dict[str, UserUpdate]) -> dict[str, np.ndarray]:
        """The new items' vectors after this chunk (read under WATCH: another partition's write re-runs it)."""
        model = self._model
        if live_key is None or model is None or model.item_fold is None:
            return {}
        names = sorted(items)
        rank = model.item_fold.rank
        stored = {item: vector for item, raw in zip(names, tx.hmget(live_key, names), strict=True)
                  if (vector := decode_vector(raw, rank)) is not None}
        vectors = {u: decode_vector(up.vector, rank) for u, up in updates.items()}
        return fold_items(admitted, vectors, stored, items, model, self._settings.events.weights,
                          self._settings.events.quantity)

    def _write_items(self, tx: redis.client.Pipeline, items: dict[str, np.ndarray]) -> None:
        if not items or self._model is None:
            return
        key, count = self._keys.live_item_vectors(self._model.version), self._keys.live_item_count(self._model.version)
        tx.hset(key, mapping={item: encode_vector(y) for item, y in items.items()})
        tx.incr(count)
        for name in (key, count):
            tx.expire(name, self._cfg.live_items_ttl_s)

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


def _no_batch_vector(user_id: str) -> None:
    return None


# The Kafka columns the realtime query hands to the executors, in WireDecoder.decode_records' order
# (ingested_at: the record's Kafka timestamp as epoch seconds).
WIRE_COLUMNS = ("value", "topic", "partition", "offset", "ingested_at")


def apply_arrow(batches: Iterator, settings: Settings, catalogue: Mapping[str, tuple[str | None, str | None]],
                model: ModelContext | None, query_id: str, batch_id: int, partition: int) -> ApplyStats:
    """Arrow record batches of Kafka records (WIRE_COLUMNS) -> validated events -> Redis, in arrival order."""
    decoder = WireDecoder(settings.events.min_ts, settings.events.max_future_skew_s)
    records = (record for batch in batches
               for record in zip(*(batch.column(name).to_pylist() for name in WIRE_COLUMNS), strict=True))
    writer = RedisStateWriter(settings, catalogue, model)
    try:
        stats = writer.apply(decoder.decode_records(records), query_id, batch_id, partition)
    finally:
        writer.close()
    stats.rejected = decoder.rejected
    return stats
