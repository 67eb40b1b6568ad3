"""A circuit breaker on a redis-py client's connections (recsys.circuit), shared by every client of one process.

Serving reads Redis once per request (recsys.stores.online_store.REQUEST_SCRIPT) and remembers the served
list once more; with Redis paused each of those would wait redis.socket_timeout_s. With the breaker, after
redis.breaker_failures failures in a row every call fails at once (as redis.ConnectionError, which the
callers already treat as "degrade") for redis.breaker_open_s, then one trial call decides.

The hook is a subclass of the pool's own connection class (plain, TLS or unix socket alike), so a
`rediss://` URL keeps its TLS.
"""

from __future__ import annotations

import os
import threading

import redis

from recsys.circuit import CircuitBreaker, CircuitOpenError
from recsys.config import RedisConfig

_FAILURES = (redis.ConnectionError, redis.TimeoutError)


class RedisCircuitOpenError(redis.ConnectionError):
    """Redis failed recently; the command was not sent (a redis.ConnectionError: callers degrade as usual)."""


class _BreakerConnection:
    """Mixed in before a redis-py connection class: checks the breaker before sending, reports each reply."""

    breaker: CircuitBreaker

    def _check(self) -> None:
        try:
            self.breaker.check()
        except CircuitOpenError as exc:
            raise RedisCircuitOpenError(str(exc)) from None

    def connect(self) -> None:
        self._check()
        try:
            super().connect()  # type: ignore[misc]
        except _FAILURES:
            self.breaker.failure()
            raise

    def send_packed_command(self, command, check_health: bool = True) -> None:
        self._check()
        try:
            super().send_packed_command(command, check_health)  # type: ignore[misc]
        except _FAILURES:
            self.breaker.failure()
            raise

    def read_response(self, *args, **kwargs):
        try:
            reply = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except _FAILURES:
            self.breaker.failure()
            raise
        self.breaker.success()
        return reply


def guard(client: redis.Redis, breaker: CircuitBreaker) -> redis.Redis:
    """Put `breaker` on every connection `client`'s pool makes from now on; returns the client."""
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _BreakerConnection):
        pool.connection_class = type(f"Breaker{base.__name__}", (_BreakerConnection, base), {"breaker": breaker})
    return client


_BREAKERS: dict[tuple[int, str], CircuitBreaker] = {}
_LOCK = threading.Lock()


def redis_breaker(cfg: RedisConfig) -> CircuitBreaker:
    """This process's breaker for the Redis at cfg.url (one per URL: the online store and the attribution
    memory trip it together). Built again after a fork."""
    key = (os.getpid(), cfg.url)
    with _LOCK:
        if key not in _BREAKERS:
            _BREAKERS[key] = CircuitBreaker(f"redis {cfg.url.split('@')[-1]}", cfg.breaker_failures,
                                            cfg.breaker_open_s)
        return _BREAKERS[key]
