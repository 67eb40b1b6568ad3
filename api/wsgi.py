"""WSGI entry point, `api.wsgi:app`: what each server worker imports (api/server.py).

The BLAS thread variables are set before the app (and numpy with it) is imported: api/server.py has set them
already for its workers, this covers any other WSGI server. At the worker's exit its queued served-list records
are sent and its live Prometheus gauges are dropped; a multiprocessing finaliser does it, since a forked worker
leaves through os._exit, which skips atexit (the finaliser also runs at a plain interpreter exit).
"""

import logging
import os
from multiprocessing.util import Finalize

from recsys.config import get_settings
from recsys.logging_setup import setup_logging
from recsys.serving.blas_threads import limit_blas_threads

limit_blas_threads(get_settings().serving.blas_threads)
setup_logging()

from api import create_app  # noqa: E402  (after the BLAS limit: numpy reads it when it loads)
from api.request_metrics import MULTIPROC_ENV  # noqa: E402
from api.services import SERVICES_EXTENSION  # noqa: E402

log = logging.getLogger(__name__)
app = create_app()


def _worker_exit(pid: int = os.getpid()) -> None:
    """Send the served records still queued (experiments.recorder.shutdown_flush_s); drop this pid's gauges."""
    app.extensions[SERVICES_EXTENSION].close()
    log.info("worker %d stopped: served-list records flushed (any not sent count as dropped_undelivered)", pid)
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


Finalize(app, _worker_exit, exitpriority=10)
