"""Real-time user state for serving: an interface and its Redis implementation."""

from __future__ import annotations

from typing import Protocol

import redis

from recsys.config import RedisConfig
from recsys.contracts.redis_keys import RedisKeys


class OnlineStore(Protocol):
    def recent_items(self, user_id: str, limit: int) -> list[str]: ...

    def purchased(self, user_id: str) -> set[str]: ...

    def ping(self) -> bool: ...


class RedisOnlineStore:
    """Reads the keys the speed layer writes (recsys.contracts.redis_keys) over one pooled client."""

    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None) -> None:
        self._keys = RedisKeys(cfg.key_prefix)
        self._client = client or redis.Redis.from_url(
            cfg.url, socket_timeout=cfg.socket_timeout_s, socket_connect_timeout=cfg.socket_timeout_s,
            decode_responses=True)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        """Most recent first."""
        return list(self._client.zrevrange(self._keys.recent_items(user_id), 0, limit - 1))

    def purchased(self, user_id: str) -> set[str]:
        return set(self._client.smembers(self._keys.purchased(user_id)))

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False
