"""What the API reports about itself (GET /v1/status): the model it serves and how fresh the speed layer is.

The speed layer writes each query's progress to a Redis hash after every micro-batch
(recsys.speed.stream.record_progress); this reads the same hashes /metrics reads, as JSON for a page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import redis

from recsys.contracts.redis_keys import BRONZE_QUERY, REALTIME_QUERY

QUERIES: tuple[str, ...] = (REALTIME_QUERY, BRONZE_QUERY)
UPDATED_AT = "updated_at"  # epoch seconds of the query's last report (recsys.speed.stream.record_progress)


class ProgressSource(Protocol):
    def stream_progress(self, query: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class QueryProgress:
    """One query's last report; a field it has not reported yet is None."""

    batch_id: int | None = None
    lag_mean_s: float | None = None  # mean time from an event's time to applied, last micro-batch
    lag_max_s: float | None = None
    kafka_lag: int | None = None  # records in Kafka the query has not processed yet
    batch_seconds: float | None = None  # duration of the last micro-batch
    age_s: float | None = None  # seconds since the query last reported


@dataclass(frozen=True)
class ServiceStatus:
    model_version: str | None
    redis: bool  # Redis answered (without it the stream's progress is unknown)
    stream: dict[str, QueryProgress] = field(default_factory=dict)  # query name -> progress


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _whole(raw: str | None) -> int | None:
    value = _number(raw)
    return None if value is None else int(value)


def query_progress(fields: dict[str, str], now: float) -> QueryProgress:
    """A progress hash as typed values; unparsable fields count as not reported."""
    updated = _number(fields.get(UPDATED_AT))
    return QueryProgress(
        batch_id=_whole(fields.get("batch_id")), lag_mean_s=_number(fields.get("lag_mean_s")),
        lag_max_s=_number(fields.get("lag_max_s")), kafka_lag=_whole(fields.get("kafka_lag")),
        batch_seconds=_number(fields.get("seconds")),
        age_s=None if updated is None else round(max(0.0, now - updated), 3))


def service_status(model_version: str | None, progress: ProgressSource, queries: Sequence[str] = QUERIES,
                   now: float | None = None) -> ServiceStatus:
    """The served version and each speed-layer query's progress; a Redis failure answers redis=False."""
    now = time.time() if now is None else now
    try:
        stream = {query: query_progress(progress.stream_progress(query), now) for query in queries}
    except redis.RedisError:
        return ServiceStatus(model_version, False)
    return ServiceStatus(model_version, True, stream)
