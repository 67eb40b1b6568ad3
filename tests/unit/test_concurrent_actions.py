"""recsys.spark.concurrent: actions run from at most `threads` threads, each result under its key."""

import threading
import time

import pytest

from recsys.spark.concurrent import concurrently

pytestmark = pytest.mark.unit


def test_results_keep_their_keys_and_at_most_threads_run_at_once():
    running, peak, lock = [0], [0], threading.Lock()

    def action(value: int):
        def run() -> int:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return value * 10
        return run

    assert concurrently({f"t{n}": action(n) for n in range(6)}, threads=2) == {f"t{n}": n * 10 for n in range(6)}
    assert peak[0] == 2


def test_one_thread_runs_them_in_order_and_a_failure_is_raised():
    order: list[int] = []
    assert concurrently({n: (lambda n=n: order.append(n) or n) for n in range(3)}, threads=1) == {0: 0, 1: 1, 2: 2}
    assert order == [0, 1, 2]

    def broken() -> int:
        raise ValueError("the write failed")

    with pytest.raises(ValueError, match="the write failed"):
        concurrently({"ok": lambda: 1, "bad": broken}, threads=2)
