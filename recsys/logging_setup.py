"""One log format for jobs, scripts and the API: time, level, logger, message."""

from __future__ import annotations

import logging
import os
import threading
import time


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(level=(level or os.environ.get("RECSYS_LOG_LEVEL", "INFO")).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LogThrottle:
    """Lets a repeated warning through at most once per interval and counts the ones held back: a broker
    or Redis that is down under load would otherwise write a line per request. Thread-safe."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def due(self) -> int | None:
        """None while the interval runs (this occurrence is held back); otherwise how many were held back
        since the last line, and the interval starts again."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval_s:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held
