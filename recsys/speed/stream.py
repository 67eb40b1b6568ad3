"""The streaming query: Kafka -> Redis state, then (bronze | quarantine) in Delta exactly once.

Each micro-batch is written with Delta's idempotent-writer options (txnAppId = the query's id,
which lives in its checkpoint; txnVersion = batch id): when Spark replays a batch after a crash,
Delta skips the commit it has already made, so bronze holds every event exactly once. A new
checkpoint is a new query id, so its batch ids (from 0 again) are never mistaken for replays.
"""

from __future__ import annotations

import logging
import threading
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from recsys.config import Settings
from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE
from recsys.spark.delta import conform, ensure_table
from recsys.speed.redis_state import StateEvent, apply_events
from recsys.speed.validation import parse_kafka_records, quarantined, valid_events

log = logging.getLogger(__name__)
QUERY_NAME = "events_to_bronze"


def kafka_source(spark: SparkSession, settings: Settings) -> DataFrame:
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
              .option("subscribe", settings.kafka.events_topic)
              .option("startingOffsets", settings.stream.starting_offsets)
              .option("maxOffsetsPerTrigger", settings.stream.max_offsets_per_trigger)
              .option("failOnDataLoss", "false"))
    for key, value in settings.kafka.security.items():
        reader = reader.option(f"kafka.{key}", value)
    return reader.load()


def _idempotent_append(df: DataFrame, path: str, app_id: str, batch_id: int, partition_by: tuple[str, ...]) -> None:
    (df.write.format("delta").mode("append")
     .option("txnAppId", app_id).option("txnVersion", batch_id)
     .partitionBy(*partition_by).save(path))


def _redis_partition_writer(settings: Settings):
    redis_cfg = settings.redis

    def write(rows) -> None:
        apply_events((StateEvent(r.user_id, r.item_id, r.event_type, r.ts_epoch) for r in rows), redis_cfg)

    return write


def process_batch(batch: DataFrame, batch_id: int, settings: Settings, app_id: str) -> dict[str, int]:
    """Write one micro-batch; callable directly from tests with a static DataFrame.

    Redis is updated first so freshness does not wait for the Delta commits (a few seconds on a
    small machine); both writes are idempotent, so a crash between them is repaired by the replay.
    """
    spark = batch.sparkSession
    started = time.time()
    parsed = parse_kafka_records(batch, settings).persist()
    try:
        good = conform(valid_events(parsed), spark, EVENTS_BRONZE)
        bad = conform(quarantined(parsed), spark, EVENTS_QUARANTINE)
        counts = {"valid": good.count(), "quarantined": bad.count()}
        if counts["valid"]:
            state = good.select("user_id", "item_id", "event_type", F.col("ts").cast("double").alias("ts_epoch"))
            state.foreachPartition(_redis_partition_writer(settings))
        applied_s = time.time() - started
        for df, spec, n in ((good, EVENTS_BRONZE, counts["valid"]), (bad, EVENTS_QUARANTINE, counts["quarantined"])):
            if n:
                _idempotent_append(df, settings.table_path(spec.name), app_id, batch_id, spec.partition_by)
    finally:
        parsed.unpersist()
    seconds = time.time() - started
    _record_progress(settings, batch_id, counts, seconds)
    log.info("batch %s: %s valid, %s quarantined; Redis after %.2fs, Delta after %.2fs", batch_id,
             counts["valid"], counts["quarantined"], applied_s, seconds)
    return counts


def _record_progress(settings: Settings, batch_id: int, counts: dict[str, int], seconds: float) -> None:
    import redis

    client = redis.Redis.from_url(settings.redis.url, socket_timeout=5.0)
    try:
        client.hset(RedisKeys(settings.redis.key_prefix).stream_progress(), mapping={
            "batch_id": batch_id, "valid": counts["valid"], "quarantined": counts["quarantined"],
            "seconds": round(seconds, 3), "applied_at": time.time()})
    except redis.RedisError as exc:  # progress is informational; never fail the batch for it
        log.warning("could not record stream progress: %s", exc)
    finally:
        client.close()


def start_stream(spark: SparkSession, settings: Settings, available_now: bool = False) -> StreamingQuery:
    """Start the query; available_now processes what is in Kafka and stops (tests, backfills)."""
    ensure_table(spark, settings, EVENTS_BRONZE)
    ensure_table(spark, settings, EVENTS_QUARANTINE)
    query_id: dict[str, str] = {}
    started = threading.Event()

    def run_batch(df: DataFrame, batch_id: int) -> None:
        started.wait()  # the id is known once start() returns; a batch may begin just before
        process_batch(df, batch_id, settings, f"{QUERY_NAME}-{query_id['id']}")

    writer = (kafka_source(spark, settings).writeStream.queryName(QUERY_NAME)
              .option("checkpointLocation", settings.checkpoint_path(QUERY_NAME))
              .foreachBatch(run_batch))
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream.trigger_s} seconds")
    query = writer.start()
    query_id["id"] = query.id
    started.set()
    return query
