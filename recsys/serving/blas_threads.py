"""One BLAS thread per API worker: a worker scores one request at a time per thread, and on a small machine
several BLAS threads per request only fight the other workers for the cores (one thread measured 3x faster
per request than two on a 2-core box).

The variables are read when numpy loads its BLAS, so they must be set before numpy is imported: by the
server process before it forks its workers (api/server.py) and by api/wsgi.py before it imports the app.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# OpenBLAS (numpy's wheels), OpenMP (e.g. scipy, pyarrow's compute) and MKL (conda numpy).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int, environ: MutableMapping[str, str] | None = None) -> None:
    """Set each variable to `threads` unless it is already set (an operator's value wins)."""
    target = os.environ if environ is None else environ
    for name in BLAS_THREAD_VARIABLES:
        target.setdefault(name, str(threads))
