"""The bronze query lands served-recommendation records in recommendations_served, exactly once; the
realtime query never reads them."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from recsys.contracts.served import ServedRecommendation
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED
from recsys.ingest.served_recorder import KafkaServedRecorder
from recsys.kafka.topics import served_topic
from recsys.spark.delta import read_table
from recsys.speed.stream import start_streams, write_bronze_batch

pytestmark = [pytest.mark.integration, pytest.mark.spark]
KAFKA_ROWS = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"


def _served(user: str, items: list[str]) -> ServedRecommendation:
    return ServedRecommendation(user_id=user, experiment="exp", variant="control", model_version="2026-11-28.1",
                                item_ids=items)


def test_a_bronze_batch_routes_served_records_by_topic_exactly_once(spark, own_lake):
    settings = own_lake
    tag = f"sb{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    event = json.dumps({"event_id": f"{tag}-e", "user_id": tag, "item_id": "i1", "event_type": "click",
                        "ts": now.isoformat()}).encode()
    served = _served(tag, ["i1", "i2"])
    bad_served = [f"not json {tag}".encode(),
                  json.dumps({**json.loads(served.to_json()), "rec_id": f"{tag}-bad", "item_ids": None}).encode()]
    topic = served_topic(settings)
    rows = [(event, settings.kafka.events_topic, 0, 1, now), (served.to_json().encode(), topic, 0, 1, now)]
    rows += [(value, topic, 1, offset, now) for offset, value in enumerate(bad_served)]
    batch = spark.createDataFrame(rows, KAFKA_ROWS)
    app_id = f"served-test-{tag}"
    assert write_bronze_batch(batch, 3, settings, app_id) == {"valid": 1, "served": 1, "quarantined": 2,
                                                                "erased": 0}
    write_bronze_batch(batch, 3, settings, app_id)  # a replayed batch commits nothing again

    lists = read_table(spark, settings, RECOMMENDATIONS_SERVED).where(f"user_id = '{tag}'").collect()
    assert len(lists) == 1
    row = lists[0]
    assert (row["rec_id"], row["variant"], row["item_ids"], row["kafka_offset"]) == (served.rec_id, "control",
                                                                                      ["i1", "i2"], 1)
    assert read_table(spark, settings, EVENTS_BRONZE).where(f"user_id = '{tag}'").count() == 1
    rejects = (read_table(spark, settings, EVENTS_QUARANTINE)
               .where(f"kafka_topic = '{topic}' AND CAST(raw AS STRING) LIKE '%{tag}%'").collect())
    assert sorted(r["detail"] for r in rejects) == ["missing_field:item_ids", "not_json"]


def test_the_stream_lands_recorded_lists_and_only_bronze_reads_the_served_topic(spark, own_lake, topics):
    settings = own_lake
    tag = f"ss{uuid.uuid4().hex[:8]}"
    recorder = KafkaServedRecorder.from_settings(settings)
    records = [_served(tag, [f"i{n}", f"i{n + 1}"]) for n in range(3)]
    assert all(recorder.record(r) for r in records)
    recorder.close(10.0)
    assert recorder.stats().delivered == len(records)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})  # so both queries have a batch
    producer.produce(settings.kafka.events_topic, key=tag.encode(), value=json.dumps(
        {"user_id": tag, "item_id": "i1", "event_type": "click", "ts": datetime.now(UTC).isoformat()}).encode())
    assert producer.flush(30) == 0

    queries = start_streams(spark, settings, available_now=True)
    for query in queries.values():
        query.awaitTermination(timeout=300)
        assert query.exception() is None, query.exception()
    sources = {name: " ".join(source.description for progress in q.recentProgress for source in progress.sources)
               for name, q in queries.items()}
    landed = {r["rec_id"] for r in read_table(spark, settings, RECOMMENDATIONS_SERVED)
              .where(f"user_id = '{tag}'").select("rec_id").collect()}
    assert landed == {r.rec_id for r in records}
    assert served_topic(settings) in sources["events_to_bronze"]
    assert settings.kafka.events_topic in sources["events_to_redis"]
    assert served_topic(settings) not in sources["events_to_redis"]
