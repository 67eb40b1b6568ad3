"""The speed layer: two streaming queries on the events topic, each with its own checkpoint.

- `events_to_redis` applies real-time adjustments to Redis from the executors on a short trigger
  (stream.realtime_trigger_s); it never waits for a Delta commit, so a shopper's event reaches
  serving in well under a second. Exactly once per chunk through markers (recsys.speed.redis_state).
- `events_to_bronze` appends every valid event to Delta bronze, every served-recommendation record (it
  also reads `<events_topic>-served`) to recommendations_served and every malformed record to the
  quarantine table, with Delta's idempotent-writer options (txnAppId = the query's id, which lives
  in its checkpoint; txnVersion = batch id): a batch Spark replays after a crash commits nothing
  twice. A new checkpoint is a new query id, so its batch ids (from 0 again) are never taken for replays.

`run_streams` keeps both running: a query that fails (Redis down past stream.redis_retry_s, a
broker hiccup) is restarted from its checkpoint and its last batch replayed. A bronze query that finds
offsets gone from Kafka stops everything with DataLossError (stream.bronze_fail_on_data_loss).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache, reduce

import pyarrow as pa
import redis
from delta.tables import DeltaTable
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from recsys.batch.interactions import drop_erased
from recsys.config import RedisConfig, Settings
from recsys.contracts.redis_keys import BRONZE_QUERY, REALTIME_QUERY, RedisKeys
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED, USER_ERASURES, TableSpec
from recsys.kafka.security import spark_kafka_options
from recsys.kafka.topics import dlq_topic, served_topic
from recsys.redis_client import redis_client
from recsys.spark.delta import conform, ensure_table
from recsys.speed import context
from recsys.speed.bronze_dedupe import OffsetWatermarks, not_yet_written, offset_bounds
from recsys.speed.redis_state import WIRE_COLUMNS, ApplyStats, apply_arrow
from recsys.speed.served import parse_served_records, valid_served
from recsys.speed.trending import rebuild_trending
from recsys.speed.validation import parse_kafka_records, quarantined, valid_events
from recsys.stores.model_store import DeltaModelStore

log = logging.getLogger(__name__)
# Kafka coordinates that identify a record in each table the bronze query appends to (one topic feeds the
# served table, so its partition and offset suffice).
BRONZE_KEYS = ("kafka_topic", "kafka_partition", "kafka_offset")
QUARANTINE_KEYS = ("kafka_topic", "kafka_partition", "kafka_offset")
SERVED_KEYS = ("kafka_partition", "kafka_offset")
STATS_DDL = ("events BIGINT, rejected BIGINT, applied BIGINT, replayed BIGINT, lag_sum_s DOUBLE, lag_max_s DOUBLE, "
             "duplicates BIGINT, erased BIGINT")
STATS_SCHEMA = pa.schema([("events", pa.int64()), ("rejected", pa.int64()), ("applied", pa.int64()),
                          ("replayed", pa.int64()), ("lag_sum_s", pa.float64()), ("lag_max_s", pa.float64()),
                          ("duplicates", pa.int64()), ("erased", pa.int64())])


def kafka_source(spark: SparkSession, settings: Settings, topics: list[str] | None = None,
                 fail_on_data_loss: bool = False) -> DataFrame:
    """The Kafka stream of `topics` (default: the events topic only).

    fail_on_data_loss: the bronze query, the system of record, fails when offsets it has not read are gone
    (retention or a deleted topic ran ahead of it) instead of skipping them silently (DataLossError,
    docs/operations.md). The realtime query skips them: Redis state is a cache the batch layer rebuilds.
    """
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
              .option("subscribe", ",".join(topics or [settings.kafka.events_topic]))
              .option("startingOffsets", settings.stream.starting_offsets)
              .option("maxOffsetsPerTrigger", settings.stream.max_offsets_per_trigger)
              .option("failOnDataLoss", str(fail_on_data_loss).lower()))
    for key, value in spark_kafka_options(settings.kafka.security).items():
        reader = reader.option(key, value)
    return reader.load()


def _idempotent_append(df: DataFrame, path: str, app_id: str, batch_id: int, partition_by: tuple[str, ...]) -> None:
    (df.write.format("delta").mode("append")
     .option("txnAppId", app_id).option("txnVersion", batch_id)
     .partitionBy(*partition_by).save(path))


def _to_dead_letter_topic(bad: DataFrame, settings: Settings) -> None:
    """Raw bytes keyed by reason, with the detail as a header, for producers' owners to inspect.

    At least once: a replayed batch may send its records again (the quarantine table is the exact record).
    """
    writer = (bad.select(F.col("reason").alias("key"), F.col("raw").alias("value"),
                         F.array(F.struct(F.lit("detail").alias("key"), F.col("detail").cast("binary").alias("value")))
                         .alias("headers"))
              .write.format("kafka").option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
              .option("topic", dlq_topic(settings)))
    for key, value in spark_kafka_options(settings.kafka.security).items():
        writer = writer.option(key, value)
    writer.save()


def _valid_and_rejected(parsed: DataFrame) -> tuple[int, int]:
    """Rows without and with a quarantine reason, in one pass."""
    row = parsed.agg(F.count(F.when(F.col("reason").isNull(), 1)).alias("ok"), F.count("reason").alias("bad")).first()
    return row["ok"], row["bad"]


def _erasures(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The user_erasures table (written by DELETE /v1/users/<id>), or None before the first erasure."""
    path = settings.table_path(USER_ERASURES.name)
    return spark.read.format("delta").load(path) if DeltaTable.isDeltaTable(spark, path) else None


def write_bronze_batch(batch: DataFrame, batch_id: int, settings: Settings, app_id: str,
                       watermarks: OffsetWatermarks | None = None) -> dict[str, int]:
    """Append one micro-batch to bronze, recommendations_served and quarantine; callable directly from tests
    with a static DataFrame. Records of the served topic are served records, any other topic's are events.

    Exactly once per Kafka record: records already in a table (same topic, partition, offset) are not
    appended again, and the events of erased users ingested before their erasure are dropped (`erased`).
    watermarks: the query run's (recsys.speed.bronze_dedupe); without them every batch reads the tables.
    """
    spark = batch.sparkSession
    started = time.time()
    raw = batch.persist()  # read from Kafka once, then split by topic
    is_served = F.col("topic") == served_topic(settings)
    parsed = parse_kafka_records(raw.where(~is_served), settings).persist()
    served = parse_served_records(raw.where(is_served), settings).persist()
    frames: list[DataFrame] = [raw, parsed, served]
    bounds = offset_bounds(raw) if watermarks is not None else {}

    def new_only(df: DataFrame, spec: TableSpec, keys: tuple[str, ...], topic: str | None = None) -> DataFrame:
        path = settings.table_path(spec.name)
        if watermarks is not None and not watermarks.may_hold(spark, path, bounds, topic):
            return df
        return not_yet_written(df, path, keys)

    try:
        valid = new_only(conform(valid_events(parsed), spark, EVENTS_BRONZE), EVENTS_BRONZE, BRONZE_KEYS)
        erasures = _erasures(spark, settings)
        good = (valid if erasures is None else drop_erased(valid, erasures)).persist()
        lists = new_only(conform(valid_served(served), spark, RECOMMENDATIONS_SERVED), RECOMMENDATIONS_SERVED,
                         SERVED_KEYS, served_topic(settings)).persist()
        rejects = conform(quarantined(parsed), spark, EVENTS_QUARANTINE)
        bad = new_only(rejects.unionByName(conform(quarantined(served), spark, EVENTS_QUARANTINE)),
                       EVENTS_QUARANTINE, QUARANTINE_KEYS).persist()
        frames += [good, lists, bad]
        n_valid, n_good = valid.count(), good.count()
        counts = {"valid": n_good, "served": lists.count(), "quarantined": bad.count(), "erased": n_valid - n_good}
        for df, spec, n in ((good, EVENTS_BRONZE, counts["valid"]), (lists, RECOMMENDATIONS_SERVED, counts["served"])):
            if n:
                _idempotent_append(df, settings.table_path(spec.name), app_id, batch_id, spec.partition_by)
        if counts["quarantined"]:
            # The dead-letter topic is the events topic's (served rejects stay in the table). Sent before the
            # quarantine commit: a crash in between resends them on replay (at least once), never drops them.
            events_bad = bad.where(F.col("kafka_topic") != served_topic(settings))
            if not events_bad.isEmpty():
                _to_dead_letter_topic(events_bad, settings)
            _idempotent_append(bad, settings.table_path(EVENTS_QUARANTINE.name), app_id, batch_id,
                               EVENTS_QUARANTINE.partition_by)
        if watermarks is not None:
            watermarks.advance(bounds)
    finally:
        for df in reversed(frames):
            df.unpersist()
    seconds = time.time() - started
    record_progress(settings, BRONZE_QUERY, {"batch_id": batch_id, **counts, "seconds": round(seconds, 3)})
    log.info("bronze batch %s: %s valid, %s served, %s quarantined, %s of erased users in %.2fs", batch_id,
             counts["valid"], counts["served"], counts["quarantined"], counts["erased"], seconds)
    return counts


def apply_realtime_batch(batch: DataFrame, batch_id: int, settings: Settings, query_id: str,
                         model_version: str | None) -> ApplyStats:
    """Apply one micro-batch's valid events to Redis on the executors; only per-partition counts come back."""
    started = time.time()
    # Validated on the executors (recsys.speed.wire): a trivial plan. The coordinates key the offset watermark.
    values = batch.select(*WIRE_COLUMNS[:-1], F.col("timestamp").cast("double").alias(WIRE_COLUMNS[-1]))

    def apply_partition(batches):
        stats = apply_arrow(batches, settings, context.catalogue(settings),
                            context.model_context(settings, model_version), query_id, batch_id,
                            TaskContext.get().partitionId())
        yield pa.RecordBatch.from_pylist([asdict(stats)], schema=STATS_SCHEMA)

    # Arrow batches, not pickled Rows: the transfer to the Python workers is most of the cost at volume.
    parts = values.mapInArrow(apply_partition, STATS_DDL).collect()
    stats = reduce(ApplyStats.add, (ApplyStats(**row.asDict()) for row in parts), ApplyStats())
    seconds = time.time() - started
    if stats.events:
        record_progress(settings, REALTIME_QUERY, {
            "batch_id": batch_id, "events": stats.events, "rejected": stats.rejected, "applied": stats.applied,
            "replayed": stats.replayed, "duplicates": stats.duplicates, "erased": stats.erased,
            "lag_mean_s": round(stats.lag_sum_s / max(stats.applied, 1), 3), "lag_max_s": round(stats.lag_max_s, 3),
            "seconds": round(seconds, 3), "model_version": model_version or ""})
        log.info("realtime batch %s: %d events (%d replayed) in %.3fs, model %s", batch_id, stats.events,
                 stats.replayed, seconds, model_version)
    return stats


@lru_cache(maxsize=4)
def _driver_client(cfg: RedisConfig) -> redis.Redis:
    """One pooled client per Redis config for the driver's writes (progress, trending view), not one per batch."""
    return redis_client(cfg, cfg.driver_timeout_s)


def record_progress(settings: Settings, query: str, fields: dict) -> None:
    """Write a query's progress HASH (what /metrics and operators read); never fails the batch."""
    try:
        _driver_client(settings.redis).hset(RedisKeys(settings.redis.key_prefix).stream_progress(query),
                                                mapping={**fields, "updated_at": round(time.time(), 3)})
    except redis.RedisError as exc:
        log.warning("could not record %s progress: %s", query, exc)


def kafka_lag(latest_offsets: str | None, end_offsets: str | None) -> int | None:
    """Records in Kafka the query has not processed yet, from a progress event's offset JSON."""
    try:
        latest, end = json.loads(latest_offsets or ""), json.loads(end_offsets or "")
    except ValueError:  # absent, or not JSON (Spark reports no offsets before the first batch)
        return None
    if not isinstance(latest, dict) or not isinstance(end, dict):
        return None
    return sum(max(0, int(offset) - int(end.get(topic, {}).get(part, 0)))
               for topic, parts in latest.items() for part, offset in parts.items())


class KafkaLagListener(StreamingQueryListener):
    """Records each query's Kafka consumer lag after every micro-batch."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def onQueryStarted(self, event) -> None:  # noqa: N802
        log.info("query %s started (id %s)", event.name, event.id)

    def onQueryProgress(self, event) -> None:  # noqa: N802
        progress = event.progress
        lags = [kafka_lag(s.latestOffset, s.endOffset) for s in progress.sources]
        known = [lag for lag in lags if lag is not None]
        if known and progress.name:
            record_progress(self._settings, progress.name, {"kafka_lag": sum(known),
                                                             "input_rows_per_s": round(progress.inputRowsPerSecond, 1)})

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        log.info("query %s terminated%s", event.id, f": {event.exception}" if event.exception else "")


class ModelVersionWatcher:
    """The current published version, re-read from the registry at most every stream.model_refresh_s."""

    def __init__(self, settings: Settings) -> None:
        self._store = DeltaModelStore(settings)
        self._refresh_s = settings.stream.model_refresh_s
        self._version: str | None = None
        self._checked = float("-inf")

    def current(self) -> str | None:
        if time.monotonic() - self._checked >= self._refresh_s:
            self._checked = time.monotonic()
            try:
                version = self._store.current_version()
            except Exception as exc:  # a registry hiccup keeps the version we have
                log.warning("model registry unreadable, keeping %s: %s", self._version, exc)
                return self._version
            if version != self._version:
                log.info("speed layer hands over from model %s to %s", self._version, version)
            self._version = version
        return self._version


def _start(spark: SparkSession, settings: Settings, name: str, trigger_s: float, available_now: bool,
           handle: Callable[[DataFrame, int, str], None], topics: list[str] | None = None,
           fail_on_data_loss: bool = False) -> StreamingQuery:
    """Start a foreachBatch query whose batches know the query's id (stable across restarts)."""
    query_id: dict[str, str] = {}
    started = threading.Event()

    def run_batch(df: DataFrame, batch_id: int) -> None:
        started.wait()  # the id is known once start() returns; a batch may begin just before
        # A scheduler pool per query (spark.scheduler.mode FAIR, recsys.spark.conf): a long bronze commit
        # does not hold every task slot while the realtime query's short jobs wait behind it.
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)
        handle(df, batch_id, f"{name}-{query_id['id']}")

    writer = (kafka_source(spark, settings, topics, fail_on_data_loss).writeStream.queryName(name)
              .option("checkpointLocation", settings.checkpoint_path(name))
              .foreachBatch(run_batch))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_s} seconds")
    query = writer.start()
    query_id["id"] = query.id
    started.set()
    return query


def start_bronze_query(spark: SparkSession, settings: Settings, available_now: bool = False) -> StreamingQuery:
    for spec in (EVENTS_BRONZE, EVENTS_QUARANTINE, RECOMMENDATIONS_SERVED):
        ensure_table(spark, settings, spec)
    watermarks = OffsetWatermarks()  # this run's: a restarted query reads its tables' offsets again
    return _start(spark, settings, BRONZE_QUERY, settings.stream.bronze_trigger_s, available_now,
                  lambda df, batch_id, app_id: write_bronze_batch(df, batch_id, settings, app_id, watermarks),
                  topics=[settings.kafka.events_topic, served_topic(settings)],
                  fail_on_data_loss=settings.stream.bronze_fail_on_data_loss)


def start_realtime_query(spark: SparkSession, settings: Settings, available_now: bool = False) -> StreamingQuery:
    watcher = ModelVersionWatcher(settings)
    keys = RedisKeys(settings.redis.key_prefix)
    client = _driver_client(settings.redis)
    last_trending = [float("-inf")]

    def handle(df: DataFrame, batch_id: int, query_id: str) -> None:
        apply_realtime_batch(df, batch_id, settings, query_id, watcher.current())
        if time.monotonic() - last_trending[0] >= settings.stream.trending_refresh_s:
            try:
                rebuild_trending(client, keys, settings.stream, time.time())
                last_trending[0] = time.monotonic()
            except redis.RedisError as exc:  # the buckets are safe; the view is rebuilt next time
                log.warning("could not rebuild the trending view: %s", exc)

    return _start(spark, settings, REALTIME_QUERY, settings.stream.realtime_trigger_s, available_now, handle)


STARTERS: dict[str, Callable[..., StreamingQuery]] = {
    BRONZE_QUERY: start_bronze_query,
    REALTIME_QUERY: start_realtime_query,
}


def start_streams(spark: SparkSession, settings: Settings, available_now: bool = False) -> dict[str, StreamingQuery]:
    return {name: start(spark, settings, available_now) for name, start in STARTERS.items()}


class DataLossError(RuntimeError):
    """Kafka no longer holds offsets the bronze query has not read: events acknowledged to clients are gone."""


def data_loss(error: BaseException | None) -> bool:
    """Whether a query failed because Kafka lost offsets it had not read (Spark's KAFKA_DATA_LOSS errors)."""
    text = str(error or "")
    return "KAFKA_DATA_LOSS" in text or "data loss" in text.lower() or "failOnDataLoss" in text


def _data_loss_error(name: str, error: BaseException) -> DataLossError:
    return DataLossError(
        f"query {name} stopped: Kafka no longer holds offsets it has not read, so acknowledged events were "
        f"lost before reaching bronze (retention or a recreated topic ran ahead of the stream). It will not "
        f"restart by itself. Recovery (docs/operations.md, 'Lost Kafka offsets'): re-send or backfill the "
        f"missing events if a source still has them, then run the stream once with "
        f"RECSYS__STREAM__BRONZE_FAIL_ON_DATA_LOSS=false to skip the gap, and restart it normally. "
        f"Spark said: {str(error).splitlines()[0] if str(error) else error!r}")


def run_streams(spark: SparkSession, settings: Settings, available_now: bool = False,
                stop: threading.Event | None = None) -> None:
    """Run both queries until stopped; restart a failed one from its checkpoint after stream.query_restart_s."""
    spark.streams.addListener(KafkaLagListener(settings))
    queries = start_streams(spark, settings, available_now)
    stop = stop or threading.Event()
    while not stop.wait(0.5):
        for name, query in list(queries.items()):
            if query.isActive:
                continue
            error = query.exception()
            if error is None:  # finished (availableNow) or stopped on purpose
                queries.pop(name)
                continue
            if data_loss(error):  # restarting would fail again, or skip the gap silently: an operator decides
                for other in queries.values():
                    other.stop()
                raise _data_loss_error(name, error)
            log.error("query %s failed, restarting from its checkpoint in %.0fs: %s", name,
                      settings.stream.query_restart_s, error)
            time.sleep(settings.stream.query_restart_s)
            queries[name] = STARTERS[name](spark, settings, available_now)
        if not queries:
            return
    for query in queries.values():
        query.stop()
