"""The API's HTTP server: granian (HTTP in Rust, the Flask app in WSGI worker processes), set from conf/ serving.*.

    .venv/bin/python -m api.server        # what `make serve`, the image and the benches run

Why granian and not gunicorn: gunicorn's gthread worker parses HTTP and dispatches connections in Python,
under the GIL the app needs; granian does both in Rust. The same app on the same 2-core machine answered about
twice the requests per second (docs/operations.md has the figures).

This process only binds and supervises: each of serving.workers workers is forked and imports api.wsgi (the
app) itself, and serving.threads blocking threads per worker run requests. Before the fork, this process:
- limits BLAS threads (recsys.serving.blas_threads): numpy reads them when a worker imports it;
- limits glibc's malloc arenas (serving.malloc_arenas), which the forked workers inherit;
- points prometheus_client's multiprocess mode at serving.metrics_dir (PROMETHEUS_MULTIPROC_DIR wins) and
  empties it, so /metrics merges this run's workers only.
The bind is serving.host and serving.port only, so the open-mode loopback check of create_app holds; this
process runs the same key check (recsys.services.auth.load_policy) before it forks, so a bad setup is one clear
error and exit status 1, not a worker crash loop.
"""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.config import ConfigError, Settings, get_settings
from recsys.services.auth import load_policy
from recsys.serving.blas_threads import limit_blas_threads

if TYPE_CHECKING:
    from granian.server import Server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # api.request_metrics.MULTIPROC_ENV; not imported (it loads the client)
APP_TARGET = "api.wsgi:app"
_METRIC_FILES = "*.db"
M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
_KILL_MARGIN_S = 5  # beyond the served records' flush, the time a worker gets to stop before it is killed


def limit_malloc_arenas(arenas: int, environ: Mapping[str, str] | None = None) -> bool:
    """glibc's M_ARENA_MAX for this process and the workers it forks; False when not applied (0, an operator's
    MALLOC_ARENA_MAX, or not glibc). glibc gives each request thread an arena of its own, up to 8 per core, and
    each keeps what it freed: measured at a million items with 32 threads, 2 arenas kept a worker 14 MB smaller
    with no change in throughput."""
    if arenas <= 0 or "MALLOC_ARENA_MAX" in (os.environ if environ is None else environ):
        return False
    try:
        return ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas) == 1
    except (AttributeError, OSError):
        return False


def prepare_environment(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    """What the workers inherit: BLAS limits, malloc arenas and an empty metrics folder; returns the folder."""
    target = os.environ if environ is None else environ
    limit_blas_threads(settings.serving.blas_threads, target)
    limit_malloc_arenas(settings.serving.malloc_arenas, target)
    directory = Path(target.setdefault(MULTIPROC_ENV, settings.path(settings.serving.metrics_dir)))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(_METRIC_FILES):  # only prometheus_client's own files
        stale.unlink()
    return directory


def build_server(settings: Settings) -> Server:
    """The granian server of serving.*; each worker that dies is started again."""
    from granian import Granian
    from granian.constants import Interfaces

    serving = settings.serving
    return Granian(
        APP_TARGET, address=serving.host, port=serving.port, interface=Interfaces.WSGI,
        workers=serving.workers, blocking_threads=serving.threads, websockets=False,
        log_access=serving.access_log, respawn_failed_workers=True,
        workers_kill_timeout=math.ceil(settings.experiments.recorder.shutdown_flush_s) + _KILL_MARGIN_S,
    )


def main() -> None:
    settings = get_settings()
    try:  # checked once here, before any fork: a worker that cannot start is a crash loop of tracebacks
        load_policy(settings.env, settings.auth, settings.serving.host, os.environ)
    except ConfigError as exc:
        raise SystemExit(f"api.server: {exc}") from None
    prepare_environment(settings)
    build_server(settings).serve()


if __name__ == "__main__":
    main()
