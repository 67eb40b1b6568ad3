"""Produce events to the Kafka topic and report only what the broker acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from recsys.config import KafkaConfig
from recsys.contracts.events import Event
from recsys.kafka.security import librdkafka_conf


class IngestUnavailableError(RuntimeError):
    """The broker did not acknowledge every event in time; the caller should retry."""


class EventSink(Protocol):
    def send(self, events: Sequence[Event]) -> int: ...

    def ping(self) -> bool: ...


class KafkaEventSink:
    """Keyed by user_id so one user's events stay ordered within a partition; idempotent producer."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self._cfg = cfg
        base = {"bootstrap.servers": cfg.bootstrap_servers, **librdkafka_conf(cfg.security)}
        self._producer = Producer({
            **base, "enable.idempotence": True, "acks": "all", "linger.ms": 2,
            "message.timeout.ms": int(cfg.produce_timeout_s * 1000),
        })
        self._admin_conf = base

    def send(self, events: Sequence[Event]) -> int:
        """Block until all are acknowledged; raise IngestUnavailableError otherwise."""
        failures: list[KafkaError] = []
        acked = 0

        def on_delivery(err: KafkaError | None, _msg) -> None:
            nonlocal acked
            if err is None:
                acked += 1
            else:
                failures.append(err)

        try:
            for event in events:
                self._producer.produce(self._cfg.events_topic, key=event.user_id.encode(),
                                       value=event.to_json().encode(), on_delivery=on_delivery)
                self._producer.poll(0)
        except (BufferError, KafkaException) as exc:
            raise IngestUnavailableError(f"could not enqueue events: {exc}") from exc
        remaining = self._producer.flush(self._cfg.produce_timeout_s)
        if remaining or failures or acked != len(events):
            reason = failures[0].str() if failures else f"{remaining} events unacknowledged"
            raise IngestUnavailableError(f"Kafka did not acknowledge {len(events) - acked} of {len(events)}: {reason}")
        return acked

    def ping(self) -> bool:
        """True when the broker answers and the events topic exists."""
        try:
            metadata = AdminClient(self._admin_conf).list_topics(topic=self._cfg.events_topic, timeout=1.0)
        except KafkaException:
            return False
        topic = metadata.topics.get(self._cfg.events_topic)
        return topic is not None and topic.error is None
