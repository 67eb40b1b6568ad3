"""How many event posts one worker lets wait on the broker, and how many more may queue for a turn.

Reads and posts share a worker's request threads. A slow or unreachable broker must not take them all, so at
most serving.ingest_slots posts wait on the broker at once and at most serving.ingest_queue more wait, each
for at most serving.ingest_wait_s, for one of those slots; any other post is refused at once (503
ingest_busy). A short burst of posts then waits its turn instead of being refused, and reads always keep
threads - ingest_slots - ingest_queue threads of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class IngestBusyError(RuntimeError):
    """Every slot is taken and the queue for them is full, or the wait for a slot ran out."""


class IngestGate:
    def __init__(self, slots: int, queue: int, wait_s: float) -> None:
        self._admitted = threading.BoundedSemaphore(slots + queue)  # posts holding or waiting for a slot
        self._slots = threading.BoundedSemaphore(slots)
        self._wait_s = wait_s

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot while the body runs; raise IngestBusyError when none comes in time."""
        if not self._admitted.acquire(blocking=False):
            raise IngestBusyError("as many posts as serving.ingest_slots + ingest_queue already wait on the broker")
        try:
            if not self._slots.acquire(timeout=self._wait_s):
                raise IngestBusyError(f"no ingest slot came free within serving.ingest_wait_s ({self._wait_s} s)")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            self._admitted.release()
