"""Create the project's Kafka topics: the events topic, its dead-letter topic `<events_topic>-dlq` and the
served-recommendations topic `<events_topic>-served`.

Idempotent: existing topics are left as they are (a partition-count mismatch is only logged).
`python -m recsys.kafka.topics` creates them; `--check` only waits for the broker and reports.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from recsys.config import ConfigError, Settings, get_settings
from recsys.kafka.security import librdkafka_conf

log = logging.getLogger("recsys.kafka.topics")

DLQ_SUFFIX = "-dlq"
SERVED_SUFFIX = "-served"


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer, or refused to create a topic, within the timeout."""


def dlq_topic(settings: Settings) -> str:
    """Dead-letter topic of the events topic; defined here once for producers and the stream."""
    return f"{settings.kafka.events_topic}{DLQ_SUFFIX}"


def served_topic(settings: Settings) -> str:
    """Topic of the served-recommendation records (recsys.contracts.served); serving writes, the stream reads."""
    return f"{settings.kafka.events_topic}{SERVED_SUFFIX}"


def project_topics(settings: Settings) -> list[str]:
    return [settings.kafka.events_topic, dlq_topic(settings), served_topic(settings)]


def topic_config(settings: Settings) -> dict[str, str]:
    """Topic-level settings the project's topics are created with.

    With replication_factor >= 3, min.insync.replicas = kafka.min_insync_replicas (at most replication - 1,
    so one broker may be down): the producer's acks=all then waits for that many replicas, and a 202 is not
    lost with the leader alone. Below 3 replicas the broker default (1) stays: 2 of 2 would stop every write
    while one broker restarts.
    """
    replication = settings.kafka.replication_factor
    if replication < 3:
        return {}
    return {"min.insync.replicas": str(min(settings.kafka.min_insync_replicas, replication - 1))}


def new_topics(settings: Settings, names: list[str]) -> list[NewTopic]:
    return [NewTopic(name, num_partitions=settings.kafka.topic_partitions,
                     replication_factor=settings.kafka.replication_factor, config=topic_config(settings))
            for name in names]


def _admin(settings: Settings) -> AdminClient:
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "socket.connection.setup.timeout.ms": 3000,
        "reconnect.backoff.max.ms": 1000,
        # Connection-refused noise while the broker starts; failures surface as KafkaUnavailableError.
        "log_level": 0,
        **librdkafka_conf(settings.kafka.security),
    }
    return AdminClient(conf)


def wait_for_broker(settings: Settings, timeout_s: float = 30.0,
                    admin: AdminClient | None = None) -> ClusterMetadata:
    """Poll cluster metadata until at least one broker is registered, or raise KafkaUnavailableError."""
    admin = admin or _admin(settings)
    deadline = time.monotonic() + timeout_s
    last: str = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KafkaUnavailableError(
                f"Kafka at {settings.kafka.bootstrap_servers} not usable after {timeout_s:.0f}s "
                f"({last}); is the broker running? (docker/local/kafka.sh status)")
        try:
            metadata = admin.list_topics(timeout=min(5.0, max(remaining, 0.5)))
            if metadata.brokers:
                return metadata
            last = "metadata lists no broker yet"
        except KafkaException as exc:
            last = str(exc.args[0]) if exc.args else repr(exc)
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


def ensure_topics(settings: Settings | None = None, timeout_s: float = 30.0) -> list[str]:
    """Create the events, dead-letter and served topics if missing; returns the names this call created."""
    settings = settings or get_settings()
    admin = _admin(settings)
    deadline = time.monotonic() + timeout_s
    metadata = wait_for_broker(settings, timeout_s, admin)
    partitions, replication = settings.kafka.topic_partitions, settings.kafka.replication_factor
    if replication > len(metadata.brokers):
        raise KafkaUnavailableError(
            f"kafka.replication_factor={replication} but {settings.kafka.bootstrap_servers} has only "
            f"{len(metadata.brokers)} broker(s); set RECSYS__KAFKA__REPLICATION_FACTOR accordingly")
    for name in project_topics(settings):
        existing = metadata.topics.get(name)
        if existing is not None and existing.error is None and len(existing.partitions) != partitions:
            log.warning("topic %s exists with %d partitions (configured %d); left unchanged",
                        name, len(existing.partitions), partitions)

    created: list[str] = []
    missing = [t for t in project_topics(settings) if t not in metadata.topics]
    while missing:
        futures = admin.create_topics(new_topics(settings, missing), request_timeout=10.0)
        retry: list[str] = []
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
                log.info("created topic %s (partitions=%d, replication=%d, config=%s)", name, partitions,
                         replication, topic_config(settings))
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    log.info("topic %s already exists", name)
                elif err.retriable() and time.monotonic() < deadline:
                    retry.append(name)
                else:
                    raise KafkaUnavailableError(
                        f"cannot create topic {name} on {settings.kafka.bootstrap_servers}: {err.str()}"
                    ) from exc
        missing = retry
        if missing:
            time.sleep(0.5)
    _align_existing(admin, settings, [t for t in project_topics(settings) if t not in created])
    return created


def _align_existing(admin: AdminClient, settings: Settings, names: list[str]) -> None:
    """Set topic_config on project topics created before it (or by hand); a failure is only logged."""
    wanted = topic_config(settings)
    if not wanted or not names:
        return
    resources = [ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in wanted.items()])
        for name in names]
    for resource, future in admin.incremental_alter_configs(resources).items():
        try:
            future.result()
            log.info("topic %s: set %s", resource.name, wanted)
        except KafkaException as exc:
            log.warning("could not set %s on topic %s: %s", wanted, resource.name, exc)


def main(argv: list[str] | None = None) -> int:
    """Create (or, with --check, only report) the project's Kafka topics."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker")
    parser.add_argument("--check", action="store_true",
                        help="only wait for the broker and report which project topics exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = get_settings()
        if args.check:
            topics = wait_for_broker(settings, args.timeout).topics
            missing = [t for t in project_topics(settings) if t not in topics]
            for name in project_topics(settings):
                if name in topics:
                    log.info("topic %s: %d partitions", name, len(topics[name].partitions))
                else:
                    log.warning("topic %s: missing", name)
            return 1 if missing else 0
        created = ensure_topics(settings, args.timeout)
        log.info("topics ready on %s: %s (created: %s)", settings.kafka.bootstrap_servers,
                 ", ".join(project_topics(settings)), ", ".join(created) or "none")
        return 0
    except (ConfigError, KafkaUnavailableError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
