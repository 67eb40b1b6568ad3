"""Fixtures on the real services: this run's Kafka topic, a Redis namespace, the API on real stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from confluent_kafka.admin import AdminClient

from recsys.config import Settings
from recsys.kafka.topics import ensure_topics, project_topics


@pytest.fixture(scope="session")
def topics(settings: Settings) -> list[str]:
    ensure_topics(settings)
    return [settings.kafka.events_topic]


@contextmanager
def topic_of_its_own(settings: Settings, prefix: str) -> Iterator[tuple[Settings, AdminClient]]:
    """Settings whose events topic is a test's own, created now and deleted afterwards."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"events_topic": topic})})
    ensure_topics(own)
    admin = AdminClient({"bootstrap.servers": own.kafka.bootstrap_servers})
    try:
        yield own, admin
    finally:
        for future in admin.delete_topics(project_topics(own), operation_timeout=10).values():
            future.result()


@pytest.fixture(scope="session")
def redis_client(settings: Settings):
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    client.ping()
    yield client
    for key in client.scan_iter(f"{settings.redis.key_prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def api_client(settings: Settings, topics, redis_client):
    from api import create_app

    app = create_app(settings)
    app.testing = True
    return app.test_client()


def run_stream_once(spark, settings: Settings) -> None:
    """Process everything currently in the topic and stop (the production queries, availableNow)."""
    from recsys.speed.stream import start_streams

    for query in start_streams(spark, settings, available_now=True).values():
        query.awaitTermination(timeout=300)
        assert query.exception() is None, query.exception()


def stored_profile(settings: Settings, user_id: str) -> tuple[dict, bytes | None]:
    """The speed layer's profile of a user as stored: (JSON fields, vector bytes)."""
    from recsys.contracts.redis_keys import RedisKeys, decode_profile

    client = redis.Redis.from_url(settings.redis.url)
    try:
        return decode_profile(client.get(RedisKeys(settings.redis.key_prefix).profile(user_id)))
    finally:
        client.close()


def events_applied(settings: Settings, user_id: str) -> int:
    from recsys.contracts.redis_keys import PROFILE_EVENTS

    return int(stored_profile(settings, user_id)[0].get(PROFILE_EVENTS, 0))


def shop_events(settings: Settings, events: list, catalogue: dict, model) -> None:
    """A shopper's events as the stream leaves them: applied to Redis by the speed layer's writer, and
    appended to bronze (delta-rs)."""
    import uuid
    from datetime import UTC, datetime

    import pyarrow as pa
    from deltalake import write_deltalake

    from recsys.contracts.tables import EVENTS_BRONZE
    from recsys.speed.redis_state import RedisStateWriter
    from recsys.stores.delta_rs import arrow_schema, ensure_table

    writer = RedisStateWriter(settings, catalogue, model)
    writer.apply(events, f"q-{uuid.uuid4().hex[:6]}", 0, 0)
    writer.close()
    ensure_table(settings, EVENTS_BRONZE)
    write_deltalake(settings.table_path(EVENTS_BRONZE.name), pa.Table.from_pylist([
        {"event_id": f"{e.user_id}-{n}", "user_id": e.user_id, "item_id": e.item_id, "event_type": e.event_type,
         "ts": datetime.fromtimestamp(e.ts, UTC), "session_id": e.session_id, "quantity": 1,
         "event_date": datetime.fromtimestamp(e.ts, UTC).date()} for n, e in enumerate(events)],
        schema=arrow_schema(EVENTS_BRONZE)), mode="append")
