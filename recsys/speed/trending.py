"""Trending items: event weights counted per time bucket, combined with exponentially decaying weights.

The stream increments the bucket of each event (recsys.speed.redis_state); the driver rebuilds one
combined ZSET at most every stream.trending_refresh_s, so serving reads trending with one ZREVRANGE.
"""

from __future__ import annotations

import redis

from recsys.config import StreamConfig
from recsys.contracts.redis_keys import RedisKeys


def bucket_weights(now: float, cfg: StreamConfig) -> dict[int, float]:
    """Weight of each recent bucket: 2^(-age of its end / half-life), 1 for the bucket still filling."""
    current = int(now // cfg.trending_bucket_s)
    weights = {}
    for bucket in range(current - cfg.trending_buckets + 1, current + 1):
        age = now - (bucket + 1) * cfg.trending_bucket_s
        weights[bucket] = min(1.0, 2.0 ** (-age / cfg.trending_half_life_s))
    return weights


def rebuild_trending(client: redis.Redis, keys: RedisKeys, cfg: StreamConfig, now: float) -> None:
    weights = {keys.trending_bucket(b): w for b, w in bucket_weights(now, cfg).items()}
    view = keys.trending()
    with client.pipeline(transaction=True) as tx:
        tx.zunionstore(view, weights)
        tx.zremrangebyrank(view, 0, -(cfg.trending_max + 1))
        tx.expire(view, cfg.trending_bucket_s * cfg.trending_buckets)
        tx.execute()
