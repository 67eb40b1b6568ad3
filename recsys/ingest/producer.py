"""Produce events to the Kafka topic and report only what the broker acknowledged.

A batch is all or nothing up to the broker: every event is serialised and checked against
events.max_event_bytes (`encode_batch`) and the whole batch must fit the producer's queue before the first
event is handed to librdkafka, so a batch is never half queued. A request then waits only for its own
events' delivery reports (not a producer-wide flush, which would also wait for other requests' events),
at most kafka.produce_timeout_s. After kafka.breaker_failures failed requests in a row the sink answers
"unavailable" at once for kafka.breaker_open_s, so an outage does not hold a thread per request.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from recsys.circuit import CircuitBreaker, CircuitOpenError
from recsys.config import KafkaConfig
from recsys.contracts.events import Event
from recsys.kafka.security import librdkafka_conf

POLL_SLICE_S = 0.1  # the delivery-report thread's longest wait in one poll (it returns on any report)
PING_TIMEOUT_S = 1.0


class IngestUnavailableError(RuntimeError):
    """The broker did not acknowledge every event in time (or failed just before); the caller should retry."""


class EventTooLargeError(ValueError):
    """An event is larger than events.max_event_bytes once serialised; nothing of its batch was sent."""

    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(f"event {index} is {size} bytes serialised; at most {limit} are accepted")
        self.index, self.size, self.limit = index, size, limit


@dataclass(frozen=True)
class EncodedEvent:
    """One event as it goes to Kafka: key (user_id) and value (the contract's JSON), in bytes."""

    key: bytes
    value: bytes


def encode_batch(events: Sequence[Event], max_event_bytes: int) -> list[EncodedEvent]:
    """Serialise every event first; raise EventTooLargeError for the first one over the limit."""
    encoded = []
    for index, event in enumerate(events):
        value = event.to_json().encode()
        if len(value) > max_event_bytes:
            raise EventTooLargeError(index, len(value), max_event_bytes)
        encoded.append(EncodedEvent(event.user_id.encode(), value))
    return encoded


@dataclass(frozen=True)
class Delivered:
    """Where the broker stored one event: what read-your-own-writes checks the stream's watermark against."""

    topic: str
    partition: int
    offset: int


class EventSink(Protocol):
    def check(self) -> None: ...

    def send(self, events: Sequence[EncodedEvent]) -> int: ...

    def deliver(self, events: Sequence[EncodedEvent]) -> list[Delivered]: ...

    def ping(self) -> bool: ...


class _Deliveries:
    """The delivery reports of one request's events (callbacks may run in any thread that polls)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.acked = 0
        self.positions: list[Delivered | None] = [None] * expected  # by the event's place in its batch
        self.failures: list[KafkaError] = []
        self.done = threading.Event()
        self._lock = threading.Lock()

    def report(self, index: int, err: KafkaError | None, msg) -> None:
        with self._lock:
            if err is None:
                self.acked += 1
                self.positions[index] = Delivered(msg.topic(), msg.partition(), msg.offset())
            else:
                self.failures.append(err)
            if self.acked + len(self.failures) >= self.expected:
                self.done.set()


def _serve_reports(sink: weakref.ref, producer: Producer) -> None:
    """Serve delivery reports until the sink is gone (a weak reference: the thread does not keep it alive)."""
    while sink() is not None:
        producer.poll(POLL_SLICE_S)  # returns as soon as it served a report


class KafkaEventSink:
    """Keyed by user_id so one user's events stay ordered within a partition; idempotent producer."""

    def __init__(self, cfg: KafkaConfig, producer: Producer | None = None) -> None:
        self._cfg = cfg
        base = {"bootstrap.servers": cfg.bootstrap_servers, **librdkafka_conf(cfg.security)}
        self._producer = producer or Producer({
            **base, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
            "message.timeout.ms": int(cfg.produce_timeout_s * 1000),
            "queue.buffering.max.messages": cfg.queue_max_messages,
        })
        self._admin_conf = base
        self._enqueue = threading.Lock()  # the room check and the produce calls of one batch, together
        self.breaker = CircuitBreaker("Kafka", cfg.breaker_failures, cfg.breaker_open_s)
        self._poller: tuple[int, threading.Thread] | None = None  # (pid, thread): threads do not survive a fork

    def check(self) -> None:
        """Raise IngestUnavailableError at once while the breaker is open (the broker failed just before)."""
        try:
            self.breaker.check("(ingest)")
        except CircuitOpenError as exc:
            raise IngestUnavailableError(str(exc)) from None

    def send(self, events: Sequence[EncodedEvent]) -> int:
        """Block until this batch is acknowledged (at most kafka.produce_timeout_s); raise
        IngestUnavailableError otherwise."""
        return len(self.deliver(events))

    def deliver(self, events: Sequence[EncodedEvent]) -> list[Delivered]:
        """`send`, returning where each event was stored, in the batch's order."""
        self.check()
        self._ensure_poller()
        deliveries = _Deliveries(len(events))
        try:
            self._queue(events, deliveries)
        except IngestUnavailableError:
            self.breaker.failure()
            raise
        deliveries.done.wait(self._cfg.produce_timeout_s)  # the poller thread serves the delivery reports
        if deliveries.failures or deliveries.acked != len(events):
            self.breaker.failure()
            reason = deliveries.failures[0].str() if deliveries.failures else "no delivery report in time"
            raise IngestUnavailableError(
                f"Kafka did not acknowledge {len(events) - deliveries.acked} of {len(events)}: {reason}")
        self.breaker.success()
        return [pos for pos in deliveries.positions if pos is not None]

    def _ensure_poller(self) -> None:
        """One daemon thread per process serves every request's delivery reports: the requests only wait on their
        own Event, instead of each polling the producer in a loop (which cost CPU and woke them in turn)."""
        pid, poller = self._poller or (None, None)
        if pid == os.getpid() and poller is not None and poller.is_alive():
            return
        with self._enqueue:
            pid, poller = self._poller or (None, None)
            if pid != os.getpid() or poller is None or not poller.is_alive():
                poller = threading.Thread(target=_serve_reports, args=(weakref.ref(self), self._producer),
                                          name="kafka-delivery-reports", daemon=True)
                poller.start()
                self._poller = (os.getpid(), poller)

    def _queue(self, events: Sequence[EncodedEvent], deliveries: _Deliveries) -> None:
        """Hand the whole batch to librdkafka, or nothing of it."""
        with self._enqueue:
            if len(self._producer) + len(events) > self._cfg.queue_max_messages:
                raise IngestUnavailableError(
                    f"the producer's queue is full ({len(self._producer)} events waiting); nothing was sent")
            try:
                for index, event in enumerate(events):
                    self._producer.produce(self._cfg.events_topic, key=event.key, value=event.value,
                                           on_delivery=partial(deliveries.report, index))
            except (BufferError, KafkaException) as exc:  # not expected after the room check
                raise IngestUnavailableError(f"could not enqueue events: {exc}") from exc
        self._producer.poll(0)

    def ping(self) -> bool:
        """True when the broker answers and the events topic exists."""
        try:
            metadata = AdminClient(self._admin_conf).list_topics(topic=self._cfg.events_topic,
                                                                 timeout=PING_TIMEOUT_S)
        except KafkaException:
            return False
        topic = metadata.topics.get(self._cfg.events_topic)
        return topic is not None and topic.error is None
