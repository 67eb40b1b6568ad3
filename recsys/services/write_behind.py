"""Served lists remembered off the request thread, so a read costs one Redis round trip (its state), not two.

`remember` only queues the list (at most experiments.memory_queue_max per worker; a full queue drops it,
counted as a remember error); one thread per worker sends whatever has queued since its last send in one
pipeline (RedisServedMemory.remember_many). Under load the lists of many requests share a round trip; when
idle a list is sent as soon as it is queued. `lookup` waits up to experiments.memory_flush_wait_s for this
worker's queued lists first, so an event posted right after a read on the same worker is attributed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping

from recsys.contracts.served import ServedRecommendation
from recsys.services.attribution import Attribution, RedisServedMemory

log = logging.getLogger(__name__)


class WriteBehindMemory:
    """RedisServedMemory's interface (remember, lookup, errors) with remember on a background thread."""

    def __init__(self, memory: RedisServedMemory, max_queued: int, flush_wait_s: float) -> None:
        self._memory = memory
        self._max_queued = max_queued
        self._flush_wait_s = flush_wait_s
        self._queue: deque[ServedRecommendation] = deque()
        self._sending = 0  # lists taken from the queue and not yet answered by Redis
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="served-memory", daemon=True)
        self._thread.start()

    @property
    def errors(self) -> int:
        return self._memory.errors

    def remember(self, served: ServedRecommendation) -> bool:
        """Queue the list; False when the queue is full (the list is dropped and counted). Never waits."""
        with self._changed:
            closed, full = self._closed, len(self._queue) >= self._max_queued
            if not (closed or full):
                self._queue.append(served)
                if len(self._queue) == 1:  # the writer may be idle; a busy one takes the rest when its send ends
                    self._changed.notify_all()
        if closed or full:
            self._memory.dropped(f"the served-list queue is {'closed' if closed else 'full'}; "
                                 "a served list was not remembered")
        return not (closed or full)

    def lookup(self, wanted: Mapping[str, Collection[str]], now: float | None = None
               ) -> dict[str, dict[str, Attribution]]:
        self.flush(self._flush_wait_s)
        return self._memory.lookup(wanted, now)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every list queued so far has been sent (or failed); False when timeout_s ran out first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._queue or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout_s: float) -> None:
        """At worker exit: send what is queued (waiting at most timeout_s), then stop the thread."""
        self.flush(timeout_s)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closed:
                    self._changed.wait()
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._sending = len(batch)
            try:
                self._memory.remember_many(batch)  # Redis errors are counted and logged there
            except Exception:  # anything else must not stop the thread: later lists would only queue up
                log.exception("could not remember %d served lists", len(batch))
            finally:
                with self._changed:
                    self._sending = 0
                    self._changed.notify_all()
