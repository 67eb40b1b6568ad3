"""Forking a PySpark driver without tearing down its connections to the JVM.

At fork, the child clears the states of every thread but the forking one. py4j keeps a connection per
thread (PySpark pins Python threads to JVM threads), and clearing a thread's state drops its connection,
whose destructor calls socket.shutdown: that ends the TCP connection for the parent too. The parent's
py4j finalizer thread then finds its connection reset, logs tracebacks and reconnects, and a reset in the
middle of a reply would kill that thread. Only the process that opened a connection may shut it down;
a child's plain close of its copy of the socket leaves the parent's connection alone.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.pool import Pool


def protect_py4j_connections() -> None:
    """Make py4j shut a socket down only in the process that patched it (the driver); idempotent."""
    try:
        from py4j import clientserver, java_gateway
    except ImportError:  # no PySpark here: nothing to protect
        return
    if getattr(clientserver.quiet_shutdown, "owner_pid", None) is not None:
        return
    original, owner = java_gateway.quiet_shutdown, os.getpid()

    def shutdown_in_owner(socket_instance) -> None:
        if os.getpid() == owner:
            original(socket_instance)

    shutdown_in_owner.owner_pid = owner
    clientserver.quiet_shutdown = java_gateway.quiet_shutdown = shutdown_in_owner


def forked_pool(workers: int) -> Pool:
    """A pool of `workers` processes forked from this one (they share its memory copy-on-write), safe to use
    from a Spark driver."""
    protect_py4j_connections()
    return multiprocessing.get_context("fork").Pool(workers)
