"""The one way to build a Redis client: the configured URL and a per-command and connect timeout.

Serving uses redis.socket_timeout_s (a slow Redis degrades a request instead of holding it); the speed
layer's writers pass redis.writer_timeout_s (executors, retried for stream.redis_retry_s) or
redis.driver_timeout_s (the driver's progress and trending writes). Clients pool their connections.
"""

from __future__ import annotations

import redis

from recsys.config import RedisConfig


def redis_client(cfg: RedisConfig, timeout_s: float | None = None, decode: bool = False) -> redis.Redis:
    """A pooled client of cfg.url; `decode` returns str instead of bytes (the profile's vector needs bytes)."""
    timeout = cfg.socket_timeout_s if timeout_s is None else timeout_s
    return redis.Redis.from_url(cfg.url, decode_responses=decode, socket_timeout=timeout,
                                socket_connect_timeout=timeout)
