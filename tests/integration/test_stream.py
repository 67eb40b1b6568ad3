"""The streaming job on the real broker: bronze exactly once, quarantine with reasons, Redis state."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE
from recsys.spark.delta import read_table
from recsys.speed.stream import process_batch
from tests.integration.conftest import run_stream_once

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _produce(settings, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for value in values:
        producer.produce(settings.kafka.events_topic, value=value)
    assert producer.flush(10) == 0


def test_stream_lands_valid_events_once_and_quarantines_the_rest(spark, settings, topics, redis_client):
    user = f"stream-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    good = [{"event_id": f"{user}-{n}", "user_id": user, "item_id": f"i{n}", "event_type": "view", "ts": now}
            for n in range(5)]
    good.append({"event_id": f"{user}-buy", "user_id": user, "item_id": "i1", "event_type": "purchase", "ts": now})
    bad = [b"garbage", json.dumps({"user_id": user, "item_id": "x", "event_type": "nope", "ts": now}).encode()]
    _produce(settings, [json.dumps(e).encode() for e in good] + bad)
    run_stream_once(spark, settings)
    run_stream_once(spark, settings)  # a restart from the checkpoint re-reads nothing

    bronze = read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{user}'")
    assert bronze.count() == len(good)
    assert bronze.select("event_id").distinct().count() == len(good)
    reasons = {r["reason"] for r in read_table(spark, settings, EVENTS_QUARANTINE).collect()}
    assert {"not_json", "unknown_event_type"} <= reasons

    keys = RedisKeys(settings.redis.key_prefix)
    assert set(redis_client.zrange(keys.recent_items(user), 0, -1)) == {f"i{n}" for n in range(5)}
    assert redis_client.smembers(keys.purchased(user)) == {"i1"}
    assert 0 < redis_client.ttl(keys.recent_items(user)) <= settings.redis.user_ttl_s


def test_replayed_micro_batch_is_not_written_twice(spark, settings, redis_client):
    user = f"replay-{uuid.uuid4().hex[:8]}"
    value = json.dumps({"event_id": f"{user}-1", "user_id": user, "item_id": "i9", "event_type": "click",
                        "ts": datetime.now(UTC).isoformat()}).encode()
    batch = spark.createDataFrame([(value, "t", 0, 1, datetime.now(UTC))],
                                  "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP")
    app_id = f"replay-test-{uuid.uuid4().hex[:8]}"  # a writer of its own, apart from the stream's
    assert process_batch(batch, 7, settings, app_id)["valid"] == 1
    process_batch(batch, 7, settings, app_id)  # Spark replays a batch after a crash
    assert read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{user}'").count() == 1
    assert redis_client.zcard(RedisKeys(settings.redis.key_prefix).recent_items(user)) == 1
