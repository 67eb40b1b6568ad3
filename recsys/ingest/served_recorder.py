"""Record every served recommendation list on Kafka without ever failing or slowing the request.

Unlike events (recsys.ingest.producer), a served record is not worth a request: `record` only hands it
to the producer's local queue and returns. A full queue (the broker is slow or down) drops the record
at once; a record the broker has not acknowledged within experiments.recorder.delivery_timeout_s is
dropped by librdkafka. Both are counted (`stats`, for /metrics) and logged at most every
experiments.log_interval_s. Keyed by user_id, like events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from recsys.config import ExperimentsConfig, KafkaConfig, Settings
from recsys.contracts.served import ServedRecommendation
from recsys.kafka.security import librdkafka_conf
from recsys.kafka.topics import served_topic
from recsys.logging_setup import LogThrottle

log = logging.getLogger(__name__)

# Outcomes a record ends in, as counted by RecorderStats and passed to a listener (e.g. a Prometheus counter).
QUEUED = "queued"
DELIVERED = "delivered"
DROPPED_QUEUE_FULL = "dropped_queue_full"
DROPPED_UNDELIVERED = "dropped_undelivered"


@dataclass(frozen=True)
class RecorderStats:
    """Counts of this process since it started; queued = delivered + dropped_undelivered + still in flight."""

    queued: int = 0
    delivered: int = 0
    dropped_queue_full: int = 0
    dropped_undelivered: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_undelivered


class ServedRecorder(Protocol):
    def record(self, served: ServedRecommendation) -> bool: ...

    def stats(self) -> RecorderStats: ...

    def close(self, timeout_s: float) -> None: ...


class KafkaServedRecorder:
    """One per worker process, created after the server forks (librdkafka's threads do not survive a fork)."""

    def __init__(self, kafka: KafkaConfig, cfg: ExperimentsConfig, topic: str, producer: Producer | None = None,
                 listener: Callable[[str], None] | None = None) -> None:
        self._topic = topic
        # No idempotence: a fatal idempotence error would stop every later record; a duplicate is harmless
        # (readers count each rec_id once).
        self._producer = producer or Producer({
            "bootstrap.servers": kafka.bootstrap_servers, **librdkafka_conf(kafka.security),
            "acks": "all", "enable.idempotence": False, "linger.ms": cfg.recorder.linger_ms,
            "queue.buffering.max.messages": cfg.recorder.queue_max_messages,
            "message.timeout.ms": int(cfg.recorder.delivery_timeout_s * 1000),
        })
        self._listener = listener
        self._throttle = LogThrottle(cfg.log_interval_s)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((QUEUED, DELIVERED, DROPPED_QUEUE_FULL, DROPPED_UNDELIVERED), 0)

    @classmethod
    def from_settings(cls, settings: Settings, listener: Callable[[str], None] | None = None) -> KafkaServedRecorder:
        return cls(settings.kafka, settings.experiments, served_topic(settings), listener=listener)

    def record(self, served: ServedRecommendation) -> bool:
        """Queue the record; False when it was dropped at once. Never raises, never waits."""
        try:
            self._producer.produce(self._topic, key=served.user_id.encode(), value=served.to_json().encode(),
                                   on_delivery=self._on_delivery)
        except BufferError:
            self._count(DROPPED_QUEUE_FULL, "the local queue is full; a served record was dropped")
            return False
        except KafkaException as exc:
            self._count(DROPPED_UNDELIVERED, f"the producer refused a served record ({exc})")
            return False
        finally:
            self._producer.poll(0)  # serve delivery callbacks of earlier records; does not wait
        self._count(QUEUED)
        return True

    def stats(self) -> RecorderStats:
        self._producer.poll(0)
        with self._lock:
            return RecorderStats(**self._counts)

    def close(self, timeout_s: float) -> None:
        """Send what is queued, waiting at most timeout_s (at shutdown); what is left counts as undelivered."""
        left = self._producer.flush(timeout_s)
        for _ in range(left):
            self._count(DROPPED_UNDELIVERED, "served records still queued at shutdown")

    def _on_delivery(self, err: KafkaError | None, _msg) -> None:
        if err is None:
            self._count(DELIVERED)
        else:
            self._count(DROPPED_UNDELIVERED, f"broker did not take a served record ({err.str()})")

    def _count(self, outcome: str, problem: str | None = None) -> None:
        with self._lock:
            self._counts[outcome] += 1
            dropped = self._counts[DROPPED_QUEUE_FULL] + self._counts[DROPPED_UNDELIVERED]
        if self._listener is not None:
            try:
                self._listener(outcome)
            except Exception:  # a metrics hook must not fail the request either
                log.exception("served-record listener failed")
        if problem is not None and (held := self._throttle.due()) is not None:
            log.warning("%s; %d more since the last warning, %d served records dropped in all",
                        problem, held, dropped)
