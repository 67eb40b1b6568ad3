"""Which trigger gives the lowest latency: micro-batches against Spark's real-time mode, on Kafka.

Produces one event every --interval-ms to a fresh topic (its send time inside), runs a Kafka query
whose sink records, per event, the time from send to processed in Redis, and prints p50/p95/p99
per trigger. Both modes use the same per-row `foreach` sink, so the figures compare the triggers,
not the work: the production realtime query adds the adjustments on top (bench/freshness.py).
Spark's real-time mode (trigger(realTime=...)) is tried as the installed Spark offers it; when Spark
refuses the query, the refusal is printed as the finding.

    .venv/bin/python bench/trigger_latency.py --seconds 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid

import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from recsys.config import get_settings
from recsys.kafka.topics import ensure_topics


class LatencySink:
    """foreach sink: one ZADD per row of (processed time - send time)."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key

    def open(self, partition_id, epoch_id):
        self.client = redis.Redis.from_url(self.url)
        return True

    def process(self, row):
        sent = json.loads(row.value)["sent"]
        self.client.zadd(self.key, {row.value: time.time() - sent})

    def close(self, error):
        self.client.close()


def produce(settings, topic: str, interval_s: float, seconds: float, stop: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 0})
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and not stop.is_set():
        producer.produce(topic, json.dumps({"n": n, "sent": time.time()}).encode())
        producer.poll(0)
        n += 1
        time.sleep(interval_s)
    producer.flush(10)


def run(spark, settings, mode: str, args) -> str:
    topic = f"bench-trigger-{uuid.uuid4().hex[:6]}"
    ensure_topics(settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"events_topic": topic})}))
    key = f"bench:trigger:{topic}"
    source = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
              .option("subscribe", topic).option("startingOffsets", "latest").load())
    writer = source.writeStream.foreach(LatencySink(settings.redis.url, key)).option(
        "checkpointLocation", settings.checkpoint_path(f"bench-trigger-{topic}"))
    if mode == "real-time mode":
        writer = writer.outputMode("update")  # the only output mode real-time mode accepts
    try:
        writer = (writer.trigger(processingTime="0 seconds") if mode == "micro-batch, trigger 0 s"
                  else writer.trigger(realTime=f"{args.seconds + 30} seconds"))
        query = writer.start()
    except Exception as exc:  # the finding is that Spark refuses the query
        return f"{mode}: refused by Spark: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    time.sleep(8)  # the first batch plans the query and opens the consumers
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(settings, topic, args.interval_ms / 1000, args.seconds, stop))
    producer.start()
    producer.join()
    time.sleep(3)
    query.stop()
    if query.exception():
        return f"{mode}: failed: {str(query.exception()).splitlines()[0][:300]}"
    client = redis.Redis.from_url(settings.redis.url)
    lat = sorted(score for _, score in client.zrange(key, 0, -1, withscores=True))
    client.delete(key)
    AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}).delete_topics([topic, f"{topic}-dlq"])
    if len(lat) < 3:
        return f"{mode}: only {len(lat)} events processed"
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return (f"{mode}: {len(lat)} events, p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
            f"p99 {q[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    from recsys.spark.session import get_spark

    settings = get_settings()
    spark = get_spark(settings, "bench-trigger")
    results = [run(spark, settings, mode, args) for mode in ("micro-batch, trigger 0 s", "real-time mode")]
    print("\n" + "\n".join(results))
    spark.stop()


if __name__ == "__main__":
    main()
