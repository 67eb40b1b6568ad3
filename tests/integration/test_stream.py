"""The streaming queries on the real broker: bronze exactly once, quarantine with reasons, Redis state."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer

from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import BRONZE_QUERY, REALTIME_QUERY, RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE
from recsys.kafka.topics import dlq_topic
from recsys.spark.delta import read_table
from recsys.speed.bronze_dedupe import OffsetWatermarks, offset_bounds
from recsys.speed.stream import apply_realtime_batch, start_streams, write_bronze_batch
from tests.integration.conftest import events_applied, run_stream_once, stored_profile

pytestmark = [pytest.mark.integration, pytest.mark.spark]
KAFKA_ROWS = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"


def _produce(settings, values: list[bytes], key: bytes | None = None) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20})
    for value in values:
        producer.produce(settings.kafka.events_topic, value=value, key=key)
    assert producer.flush(30) == 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_stream_lands_valid_events_once_and_quarantines_the_rest(spark, settings, topics, redis_client, api_client):
    user = f"stream-{uuid.uuid4().hex[:8]}"
    good = [{"event_id": f"{user}-{n}", "user_id": user, "item_id": f"i{n}", "event_type": "view", "ts": _now()}
            for n in range(5)]
    good.append({"event_id": f"{user}-buy", "user_id": user, "item_id": "i1", "event_type": "purchase", "ts": _now()})
    bad = [b"garbage", json.dumps({"user_id": user, "item_id": "x", "event_type": "nope", "ts": _now()}).encode()]
    _produce(settings, [json.dumps(e).encode() for e in good] + bad, key=user.encode())
    run_stream_once(spark, settings)
    run_stream_once(spark, settings)  # a restart from the checkpoints re-reads nothing

    bronze = read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{user}'")
    assert bronze.count() == len(good)
    assert bronze.select("event_id").distinct().count() == len(good)
    reasons = {r["reason"] for r in read_table(spark, settings, EVENTS_QUARANTINE).collect()}
    assert {"not_json", "unknown_event_type"} <= reasons

    keys = RedisKeys(settings.redis.key_prefix)
    assert set(redis_client.zrange(keys.recent_items(user), 0, -1)) == {f"i{n}" for n in range(5)}
    assert stored_profile(settings, user)[0][rk.PROFILE_PURCHASED] == ["i1"]
    assert events_applied(settings, user) == len(good)
    assert 0 < redis_client.ttl(keys.recent_items(user)) <= settings.redis.user_ttl_s
    progress = redis_client.hgetall(keys.stream_progress(REALTIME_QUERY))
    assert int(progress["events"]) > 0 and float(progress["lag_max_s"]) >= 0
    metrics = api_client.get("/metrics").get_data(as_text=True)
    assert f'recsys_stream_event_lag_max_seconds{{query="{REALTIME_QUERY}"}}' in metrics
    assert "recsys_redis_up 1.0" in metrics


def test_replayed_micro_batches_are_not_written_twice(spark, settings, redis_client):
    user = f"replay-{uuid.uuid4().hex[:8]}"
    value = json.dumps({"event_id": f"{user}-1", "user_id": user, "item_id": "i9", "event_type": "click",
                        "ts": datetime.now(UTC).isoformat()}).encode()
    # Kafka coordinates of its own: the same (topic, partition, offset) is one record to bronze and Redis
    batch = spark.createDataFrame([(value, f"t-{user}", 0, 1, datetime.now(UTC))], KAFKA_ROWS)
    app_id = f"replay-test-{uuid.uuid4().hex[:8]}"  # a writer of its own, apart from the stream's
    assert write_bronze_batch(batch, 7, settings, app_id)["valid"] == 1
    write_bronze_batch(batch, 7, settings, app_id)  # Spark replays a batch after a crash
    assert read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{user}'").count() == 1
    assert apply_realtime_batch(batch, 7, settings, app_id, None).applied == 1
    assert apply_realtime_batch(batch, 7, settings, app_id, None).replayed == 1
    assert events_applied(settings, user) == 1


def _malformed(tag: str, n: int) -> bytes:
    """One of each kind of bad record, in turn; every one carries the tag in its raw bytes."""
    old = (datetime.now(UTC) - timedelta(days=365 * 40)).isoformat()
    base = {"event_id": f"{tag}-bad-{n}", "user_id": f"{tag}-u", "item_id": "i1", "event_type": "view", "ts": _now()}
    kinds = [
        f"not json {tag} {n}".encode(),
        json.dumps({**base, "user_id": None}).encode(),
        json.dumps({**base, "event_type": "teleport"}).encode(),
        json.dumps({**base, "ts": old}).encode(),
        json.dumps({**base, "item_id": "bad id with spaces"}).encode(),
        json.dumps({**base, "quantity": -3}).encode(),
        json.dumps({**base, "price": -1.0}).encode(),
    ]
    return kinds[n % len(kinds)]


def test_ten_thousand_malformed_records_are_quarantined_while_the_query_keeps_running(
        spark, settings, topics, redis_client):
    tag = f"mal{uuid.uuid4().hex[:6]}"
    n_bad, n_good = 10_000, 500
    good = [json.dumps({"event_id": f"{tag}-g{n}", "user_id": f"{tag}-u{n % 20}", "item_id": f"i{n % 50}",
                        "event_type": "view", "ts": _now()}).encode() for n in range(n_good)]
    records = []
    for n in range(n_bad):
        records.append(_malformed(tag, n))
        if n % (n_bad // n_good) == 0 and good:
            records.append(good.pop())
    records += good
    queries = start_streams(spark, settings)
    try:
        _produce(settings, records)
        deadline = time.time() + 240
        bronze = quarantine = 0
        while time.time() < deadline:
            bronze = read_table(spark, settings, EVENTS_BRONZE).where(f"event_id LIKE '{tag}-g%'").count()
            quarantine = (read_table(spark, settings, EVENTS_QUARANTINE)
                          .where(f"CAST(raw AS STRING) LIKE '%{tag}%'").count())
            if bronze >= n_good and quarantine >= n_bad:
                break
            time.sleep(2)
        assert all(q.isActive for q in queries.values()), [q.exception() for q in queries.values()]
    finally:
        for query in queries.values():
            query.stop()
    assert (bronze, quarantine) == (n_good, n_bad)
    reasons = {r["reason"] for r in read_table(spark, settings, EVENTS_QUARANTINE)
               .where(f"CAST(raw AS STRING) LIKE '%{tag}%'").select("reason").distinct().collect()}
    assert reasons == {"not_json", "missing_field", "unknown_event_type", "absurd_ts", "bad_id", "bad_quantity",
                       "bad_price"}
    keys = RedisKeys(settings.redis.key_prefix)
    applied = sum(events_applied(settings, f"{tag}-u{u}") for u in range(20))
    assert applied == n_good
    assert _dead_letters(settings, tag) > 0
    assert int(redis_client.hget(keys.stream_progress(BRONZE_QUERY), "quarantined")) >= 0


def _dead_letters(settings, tag: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"dlq-{tag}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([dlq_topic(settings)])
    found, deadline = 0, time.time() + 20
    while time.time() < deadline and not found:
        for message in consumer.consume(1000, timeout=1.0):
            if message.error() is None and tag.encode() in (message.value() or b""):
                found += 1
    consumer.close()
    return found


def test_a_run_reads_a_table_for_duplicates_only_when_a_batch_reaches_back_into_its_offsets(spark, own_lake):
    settings = own_lake
    user = f"wm-{uuid.uuid4().hex[:8]}"
    topic = f"t-{user}"

    def batch(offsets: range):
        now = datetime.now(UTC)
        return spark.createDataFrame([(json.dumps({"event_id": f"{user}-{n}", "user_id": user, "item_id": "i1",
                                                   "event_type": "click", "ts": now.isoformat()}).encode(),
                                       topic, 0, n, now) for n in offsets], KAFKA_ROWS)

    def bronze_offsets() -> list[int]:
        return sorted(r["kafka_offset"] for r in read_table(spark, settings, EVENTS_BRONZE)
                      .where(f"user_id = '{user}'").select("kafka_offset").collect())

    run = OffsetWatermarks()
    assert write_bronze_batch(batch(range(0, 3)), 0, settings, "run-1", run)["valid"] == 3
    path = settings.table_path(EVENTS_BRONZE.name)
    assert not run.may_hold(spark, path, offset_bounds(batch(range(3, 5))))  # the next batch skips the read
    assert run.may_hold(spark, path, offset_bounds(batch(range(2, 5))))
    assert write_bronze_batch(batch(range(3, 5)), 1, settings, "run-1", run)["valid"] == 2

    # A lost checkpoint: a new run (new query id, batch ids from 0) re-reads Kafka from the start.
    rerun = OffsetWatermarks()
    assert rerun.may_hold(spark, path, offset_bounds(batch(range(0, 6))))  # learnt from the table itself
    assert write_bronze_batch(batch(range(0, 6)), 0, settings, "run-2", rerun)["valid"] == 1
    assert bronze_offsets() == list(range(6))
