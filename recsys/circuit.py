"""A circuit breaker: after a few failures in a row a dependency is skipped for a while, so an unreachable
Redis or broker costs a request one fast failure instead of a timeout per call.

States: closed (calls go through), open (calls fail at once until `open_s` has passed), half-open (calls go
through again; the first success closes the breaker, the first failure opens it again at once). Thread-safe;
one breaker per dependency per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    """The dependency failed recently; the call was not tried."""


class CircuitBreaker:
    def __init__(self, name: str, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return OPEN if self._clock() - self._opened_at < self._open_s else HALF_OPEN

    def allow(self) -> bool:
        """True when a call may go ahead (closed or half-open)."""
        with self._lock:
            return self._state() != OPEN

    def check(self, what: str = "") -> None:
        """Raise CircuitOpenError unless a call may go ahead."""
        if not self.allow():
            message = f"{self.name} failed recently; not tried for up to {self._open_s:g}s {what}"
            raise CircuitOpenError(message.strip())

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._clock()  # (re)open: a failure when half-open starts a new open period
