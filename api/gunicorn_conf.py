"""gunicorn settings from conf/ (serving.*), one BLAS thread per worker, Prometheus multiprocess mode for the
request metrics, and a flush of each worker's served-list records when it exits.

The BLAS thread variables (serving.blas_threads) are set here, in the master, before any worker imports
numpy: the workers inherit them when gunicorn forks (recsys.serving.blas_threads).

Each worker is its own process, so request metrics are kept in prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, default serving.metrics_dir) and /metrics merges them. The variable is set
here, in the master, before any worker imports prometheus_client; the directory's files are removed when
gunicorn starts (figures of an earlier run would otherwise be added in), and a worker that exits is
marked dead so its live gauges stop counting.
"""

import os
from pathlib import Path

from recsys.config import get_settings
from recsys.serving.blas_threads import limit_blas_threads

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # api.request_metrics.MULTIPROC_ENV; not imported (see above)
_METRIC_FILES = "*.db"

_settings = get_settings()
_serving = _settings.serving
os.environ.setdefault(MULTIPROC_ENV, _settings.path(_serving.metrics_dir))
limit_blas_threads(_serving.blas_threads)

bind = f"{_serving.host}:{_serving.port}"
workers = _serving.workers
worker_class = "gthread"
threads = _serving.threads
timeout = 30
accesslog = "-"


def on_starting(server) -> None:
    """Master start: an empty metrics directory (only prometheus_client's own files are removed)."""
    directory = Path(os.environ[MULTIPROC_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(_METRIC_FILES):
        stale.unlink()


def when_ready(server) -> None:
    """Listening: open mode (auth.open) must not listen beyond loopback, even when --bind overrode serving.host."""
    if not _settings.auth.open:
        return
    from recsys.services.auth import is_loopback

    exposed = [str(listener) for listener in server.LISTENERS
               if isinstance(listener.sock.getsockname(), tuple) and not is_loopback(listener.sock.getsockname()[0])]
    if exposed:
        server.log.critical("auth.open (no API keys) on %s, which is not loopback: refusing to serve", exposed)
        raise SystemExit(1)


def child_exit(server, worker) -> None:
    """A worker exited: drop its live-gauge files (counters and histograms keep their totals)."""
    from prometheus_client import multiprocess  # imported late: after MULTIPROC_ENV is set

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker) -> None:
    """In the exiting worker: send its queued served-list records (experiments.recorder.shutdown_flush_s)."""
    from api.services import SERVICES_EXTENSION  # in the worker, which has loaded the app (and numpy) already

    app = getattr(worker, "wsgi", None)
    svc = None if app is None else app.extensions.get(SERVICES_EXTENSION)
    if svc is not None:
        svc.close()
