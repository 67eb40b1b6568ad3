"""Real-time user state written to Redis from the executors, idempotently.

Every write is safe to replay: recent items are a ZSET updated with GT (a replayed, older
timestamp never wins) and purchases a SET, so re-running a micro-batch changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from recsys.config import RedisConfig
from recsys.contracts.redis_keys import RedisKeys

PIPELINE_CHUNK = 500
RETRIES = 5


@dataclass(frozen=True)
class StateEvent:
    user_id: str
    item_id: str
    event_type: str
    ts_epoch: float


def _apply_chunk(pipe: redis.client.Pipeline, keys: RedisKeys, cfg: RedisConfig,
                 chunk: list[StateEvent]) -> None:
    touched: set[str] = set()
    for ev in chunk:
        recent = keys.recent_items(ev.user_id)
        pipe.zadd(recent, {ev.item_id: ev.ts_epoch}, gt=True)
        touched.add(recent)
        if ev.event_type == "purchase":
            bought = keys.purchased(ev.user_id)
            pipe.sadd(bought, ev.item_id)
            touched.add(bought)
    for key in touched:
        if key.endswith(":recent"):
            pipe.zremrangebyrank(key, 0, -(cfg.recent_items_max + 1))
        pipe.expire(key, cfg.user_ttl_s)
    pipe.execute()


def apply_events(events: Iterable[StateEvent], cfg: RedisConfig) -> int:
    """Apply events to Redis in pipelined chunks, retrying a failed chunk with backoff."""
    client = redis.Redis.from_url(cfg.url, socket_timeout=max(cfg.socket_timeout_s, 5.0))
    keys = RedisKeys(cfg.key_prefix)
    applied, chunk = 0, []
    try:
        for ev in events:
            chunk.append(ev)
            if len(chunk) >= PIPELINE_CHUNK:
                applied += _apply_with_retry(client, keys, cfg, chunk)
                chunk = []
        if chunk:
            applied += _apply_with_retry(client, keys, cfg, chunk)
    finally:
        client.close()
    return applied


def _apply_with_retry(client: redis.Redis, keys: RedisKeys, cfg: RedisConfig, chunk: list[StateEvent]) -> int:
    for attempt in range(RETRIES):
        try:
            _apply_chunk(client.pipeline(transaction=False), keys, cfg, chunk)
            return len(chunk)
        except redis.ConnectionError:
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    return 0
