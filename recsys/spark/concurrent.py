"""Several Spark actions at once, from driver threads.

A stage's small actions (a Delta write per output table, an Arrow collect per table) each spend most of
their time on the driver: planning, the Delta log, the commit, the transfer. Run one after another they
leave the executors idle in between; submitted from threads they are separate Spark jobs whose driver work
overlaps the others' tasks. PySpark pins each Python thread to its own JVM thread, so they do not
serialise on the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def concurrently(actions: Mapping[K, Callable[[], V]], threads: int) -> dict[K, V]:
    """Each action's result under its key, at most `threads` running at a time; the first failure is raised."""
    if threads <= 1 or len(actions) <= 1:
        return {key: action() for key, action in actions.items()}
    with ThreadPoolExecutor(max_workers=min(threads, len(actions)), thread_name_prefix="spark-action") as pool:
        futures = {key: pool.submit(action) for key, action in actions.items()}
        return {key: future.result() for key, future in futures.items()}
