"""Split raw Kafka records into valid events and quarantined records, in Spark SQL (no Python UDFs).

The rules mirror recsys.contracts.events.Event, which the API applies first; the stream checks
again because any producer can write to the topic.
"""

from __future__ import annotations

from datetime import UTC

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts.events import (
    EVENT_TYPES,
    ID_PATTERN,
    MAX_ID_LENGTH,
    MAX_QUANTITY,
    REQUIRED_FIELDS,
    QuarantineReason,
)
from recsys.contracts.tables import EVENT_PAYLOAD_DDL


def bad_id(col: Column, pattern: str = ID_PATTERN) -> Column:
    return (F.length(col) > MAX_ID_LENGTH) | ~col.rlike(pattern)


def absurd_ts(ts: Column, settings: Settings, now: Column) -> Column:
    """ts before events.min_ts or more than events.max_future_skew_s ahead of now."""
    min_ts = F.lit(settings.events.min_ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")
    max_ts = now + F.expr(f"INTERVAL {settings.events.max_future_skew_s} SECONDS")
    return (ts < min_ts) | (ts > max_ts)


def first_failing(rules: list[tuple[Column, Column]]) -> Column:
    """The reason of the first rule whose condition holds (a NULL condition does not), or NULL: valid."""
    expr = F.when(rules[0][0], rules[0][1])
    for cond, reason in rules[1:]:
        expr = expr.when(F.coalesce(cond, F.lit(False)), reason)
    return expr


def _reason(settings: Settings, now: Column) -> Column:
    """First failing rule of a parsed record, or NULL when the record is valid."""
    e = F.col("e")
    rules: list[tuple[Column, Column]] = [(F.col("e").isNull(), F.lit(QuarantineReason.NOT_JSON))]
    for field in REQUIRED_FIELDS:
        rules.append((e[field].isNull(), F.lit(f"{QuarantineReason.MISSING_FIELD}:{field}")))
    rules += [
        (~e["event_type"].isin(*EVENT_TYPES), F.lit(QuarantineReason.UNKNOWN_EVENT_TYPE)),
        (bad_id(e["user_id"]) | bad_id(e["item_id"]) | bad_id(e["event_id"])
         | (e["session_id"].isNotNull() & bad_id(e["session_id"])), F.lit(QuarantineReason.BAD_ID)),
        (absurd_ts(e["ts"], settings, now), F.lit(QuarantineReason.ABSURD_TS)),
        ((e["quantity"] < 1) | (e["quantity"] > MAX_QUANTITY), F.lit(QuarantineReason.BAD_QUANTITY)),
        (e["price"] < 0, F.lit(QuarantineReason.BAD_PRICE)),
    ]
    return first_failing(rules)


def parse_kafka_records(raw: DataFrame, settings: Settings) -> DataFrame:
    """Kafka rows (value, topic, partition, offset, timestamp) -> parsed struct `e` plus `reason`.

    A missing event_id gets a deterministic one from the Kafka coordinates, so a replay produces
    the same id; a missing quantity defaults to 1.
    """
    text = F.col("value").cast("string")
    parsed = F.from_json(text, EVENT_PAYLOAD_DDL, {"mode": "PERMISSIVE"})
    # from_json yields a struct of NULLs, not NULL, for malformed text; a map parse tells them apart.
    is_object = F.from_json(text, "MAP<STRING, STRING>").isNotNull()
    with_e = raw.withColumn("e", F.when(is_object, parsed))
    fallback_id = F.concat_ws("-", F.lit("k"), F.col("topic"), F.col("partition"), F.col("offset"))
    with_e = with_e.withColumn(
        "e",
        F.when(F.col("e").isNotNull(), F.col("e").withField(
            "event_id", F.coalesce(F.col("e.event_id"), fallback_id)).withField(
            "quantity", F.coalesce(F.col("e.quantity"), F.lit(1)))),
    )
    return with_e.withColumn("reason", _reason(settings, F.current_timestamp()))


def valid_events(parsed: DataFrame) -> DataFrame:
    """Rows for the bronze table; recsys.spark.delta.conform casts them to the contract."""
    return parsed.where(F.col("reason").isNull()).select(
        "e.*",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.current_timestamp().alias("ingested_at"),
        F.to_date(F.col("e.ts")).alias("event_date"),
        F.col("topic").alias("kafka_topic"),
        F.col("timestamp").alias("kafka_timestamp"),
    )


def quarantined(parsed: DataFrame) -> DataFrame:
    """Rows for the quarantine table from any parsed frame with the Kafka columns and `reason`."""
    return parsed.where(F.col("reason").isNotNull()).select(
        F.split(F.col("reason"), ":").getItem(0).alias("reason"),
        F.col("reason").alias("detail"),
        F.col("value").alias("raw"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("quarantined_at"),
        F.current_date().alias("quarantine_date"),
    )
