"""Fault tests of the speed layer on the real broker, Spark, Delta and Redis: a lost checkpoint, offsets
Kafka no longer holds, and an erased shopper whose future-dated events were still in Kafka.

Each shows what is kept: bronze rows, the Redis state, and the shopper's history.
"""

import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer, TopicPartition

from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE
from recsys.services.user_data import UserDataService
from recsys.spark.delta import read_table
from recsys.speed.stream import DataLossError, run_streams
from tests.integration.conftest import events_applied, run_stream_once, topic_of_its_own

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _events(user: str, n: int, ts: datetime, tag: str = "e") -> list[bytes]:
    return [json.dumps({"event_id": f"{user}-{tag}{k}", "user_id": user, "item_id": f"i{k}", "event_type": "view",
                        "ts": ts.isoformat()}).encode() for k in range(n)]


def _produce(settings, values: list[bytes], partition: int | None = None) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 5})
    for value in values:
        kwargs = {} if partition is None else {"partition": partition}
        producer.produce(settings.kafka.events_topic, value=value, key=b"k", **kwargs)
    assert producer.flush(30) == 0


def _bronze(spark, settings, user: str):
    return read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{user}'")


def test_a_lost_checkpoint_neither_appends_to_bronze_nor_applies_to_redis_again(spark, own_lake, topics,
                                                                                 redis_client):
    settings, user = own_lake, f"lost-{uuid.uuid4().hex[:8]}"
    _produce(settings, _events(user, 4, datetime.now(UTC)))
    run_stream_once(spark, settings)
    assert _bronze(spark, settings, user).count() == 4 and events_applied(settings, user) == 4
    shutil.rmtree(settings.path(settings.storage.checkpoint_root))  # both queries' checkpoints are gone
    run_stream_once(spark, settings)  # new query ids, from stream.starting_offsets (earliest): all replayed
    bronze = _bronze(spark, settings, user)
    assert bronze.count() == 4
    assert bronze.select("kafka_topic", "kafka_partition", "kafka_offset").distinct().count() == 4
    assert events_applied(settings, user) == 4


@pytest.fixture
def loss_topic(own_lake):
    """An events topic of this test's own (records are deleted from it), removed afterwards."""
    with topic_of_its_own(own_lake, "test-loss") as own:
        yield own


def test_bronze_stops_with_a_clear_error_when_kafka_lost_offsets_it_had_not_read(spark, loss_topic, redis_client):
    settings, admin = loss_topic
    user = f"loss-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    _produce(settings, _events(user, 2, now, "a"), partition=0)
    run_stream_once(spark, settings)
    assert _bronze(spark, settings, user).count() == 2
    _produce(settings, _events(user, 3, now, "b"), partition=0)  # offsets 2, 3, 4
    gone = admin.delete_records([TopicPartition(settings.kafka.events_topic, 0, 4)], operation_timeout=10)
    for future in gone.values():
        assert future.result().low_watermark == 4  # retention ran ahead of the stream: offsets 2 and 3 are lost
    with pytest.raises(DataLossError, match="RECSYS__STREAM__BRONZE_FAIL_ON_DATA_LOSS=false"):
        run_streams(spark, settings, available_now=True)
    assert _bronze(spark, settings, user).count() == 2  # nothing was skipped silently

    # The documented recovery: one run that accepts the gap, then the normal setting again.
    accepting = settings.model_copy(update={"stream": settings.stream.model_copy(
        update={"bronze_fail_on_data_loss": False})})
    run_streams(spark, accepting, available_now=True)
    assert [r["event_id"] for r in _bronze(spark, settings, user).where("kafka_offset >= 2").collect()] == [
        f"{user}-b2"]


def test_an_erased_shopper_with_future_dated_events_in_kafka_stays_erased(spark, own_lake, topics, redis_client):
    settings, user = own_lake, f"erased-{uuid.uuid4().hex[:8]}"
    _produce(settings, _events(user, 3, datetime.now(UTC) + timedelta(hours=2), "f"))  # dated two hours ahead
    users = UserDataService(settings)
    users.forget_user(user)  # DELETE /v1/users/<id> while their events are still in Kafka
    run_stream_once(spark, settings)

    assert _bronze(spark, settings, user).count() == 0
    assert redis_client.exists(RedisKeys(settings.redis.key_prefix).profile(user)) == 0
    history = users.history(user, limit=10)
    assert history.events == [] and history.realtime["events_applied"] == 0

    _produce(settings, _events(user, 1, datetime.now(UTC), "back"))  # the shopper returns: new activity counts
    run_stream_once(spark, settings)
    assert [r["event_id"] for r in _bronze(spark, settings, user).collect()] == [f"{user}-back0"]
    assert events_applied(settings, user) == 1
