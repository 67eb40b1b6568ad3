"""Fixtures on the real services: this run's Kafka topic, a Redis namespace, the API on real stores."""

from __future__ import annotations

import pytest
import redis

from recsys.config import Settings
from recsys.ops.kafka_topics import ensure_topics


@pytest.fixture(scope="session")
def topics(settings: Settings) -> list[str]:
    ensure_topics(settings)
    return [settings.kafka.events_topic]


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
