"""Request metrics: latency by endpoint, method and status, and errors by endpoint and error code; and the
health of the served-list records: each record's outcome and the attribution memory's Redis errors.

The endpoint label is the URL rule (`/v1/users/<user_id>/recommendations`), never the raw path, so the
label set stays small. api/server.py sets PROMETHEUS_MULTIPROC_DIR before it forks the workers, so
before any worker imports prometheus_client: each worker then writes its samples to files there and /metrics
merges every worker's files (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # endpoint label of a request that matched no route (404, 405)

# This process's own samples (single-process mode); in multiprocess mode the files are read instead.
REQUEST_REGISTRY = CollectorRegistry()
REQUEST_LATENCY = Histogram("recsys_http_request_duration_seconds", "Time to answer an HTTP request",
                            ["endpoint", "method", "status"], registry=REQUEST_REGISTRY)
REQUEST_ERRORS = Counter("recsys_http_errors", "HTTP requests answered with a JSON error",
                         ["endpoint", "error"], registry=REQUEST_REGISTRY)
SERVED_RECORDS = Counter("recsys_served_records", "Served-list records by outcome: queued, delivered, "
                         "dropped_queue_full, dropped_undelivered (recsys.ingest.served_recorder)",
                         ["outcome"], registry=REQUEST_REGISTRY)
ATTRIBUTION_ERRORS = Counter("recsys_attribution_errors", "Redis errors of attribution: a served list not "
                             "remembered, or events sent unattributed", ["operation"], registry=REQUEST_REGISTRY)


def _endpoint() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def register_request_metrics(app: Flask) -> None:
    """Time every request of `app` and count its errors (first before_request, so it sees every request)."""

    @app.before_request
    def _start_timer() -> None:
        g.recsys_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("recsys_started")
        endpoint = _endpoint()
        if started is not None:
            REQUEST_LATENCY.labels(endpoint, request.method, str(response.status_code)).observe(
                time.perf_counter() - started)
        error = g.get("recsys_error")
        if error is not None:
            REQUEST_ERRORS.labels(endpoint, error).inc()
        return response


def count_served_record(outcome: str) -> None:
    """KafkaServedRecorder's listener: one served record reached `outcome`."""
    SERVED_RECORDS.labels(outcome).inc()


def count_attribution_error(operation: str) -> None:
    """RedisServedMemory's listener: Redis failed one `operation` (remember or lookup)."""
    ATTRIBUTION_ERRORS.labels(operation).inc()


def request_collector() -> CollectorRegistry:
    """What /metrics exports of the request metrics: every worker's files, or this process's registry."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return REQUEST_REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry
