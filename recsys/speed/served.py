"""Served-recommendation records from Kafka -> rows of recommendations_served, or quarantine, in Spark SQL.

The rules mirror recsys.contracts.served.ServedRecommendation, which serving builds every record with;
the stream checks again because anything can be written to a topic. Rejects go to the events'
quarantine table with the same reasons (QuarantineReason); their kafka_topic tells them apart.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts.events import QuarantineReason
from recsys.contracts.model_version import VERSION_PATTERN
from recsys.contracts.served import REQUIRED_FIELDS
from recsys.contracts.tables import SERVED_PAYLOAD_DDL
from recsys.speed.validation import absurd_ts, bad_id, first_failing


def _reason(settings: Settings, now: Column) -> Column:
    """First failing rule of a parsed record, or NULL when the record is valid."""
    s = F.col("s")
    rules: list[tuple[Column, Column]] = [(s.isNull(), F.lit(QuarantineReason.NOT_JSON))]
    for field in REQUIRED_FIELDS:
        rules.append((s[field].isNull(), F.lit(f"{QuarantineReason.MISSING_FIELD}:{field}")))
    rules += [
        (bad_id(s["rec_id"]) | bad_id(s["user_id"]) | bad_id(s["experiment"]) | bad_id(s["variant"])
         | F.exists(s["item_ids"], lambda item: item.isNull() | bad_id(item))
         | (s["model_version"].isNotNull() & bad_id(s["model_version"], VERSION_PATTERN)),
         F.lit(QuarantineReason.BAD_ID)),
        (absurd_ts(s["ts"], settings, now), F.lit(QuarantineReason.ABSURD_TS)),
    ]
    return first_failing(rules)


def parse_served_records(raw: DataFrame, settings: Settings) -> DataFrame:
    """Kafka rows (value, topic, partition, offset, timestamp) -> parsed struct `s` plus `reason`."""
    text = F.col("value").cast("string")
    # json_object_keys is NULL for anything but a JSON object (malformed text, an array, a scalar).
    is_object = F.json_object_keys(text).isNotNull()
    parsed = raw.withColumn("s", F.when(is_object, F.from_json(text, SERVED_PAYLOAD_DDL, {"mode": "PERMISSIVE"})))
    return parsed.withColumn("reason", _reason(settings, F.current_timestamp()))


def valid_served(parsed: DataFrame) -> DataFrame:
    """Rows for recommendations_served; recsys.spark.delta.conform casts them to the contract."""
    return parsed.where(F.col("reason").isNull()).select(
        "s.*",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.current_timestamp().alias("ingested_at"),
        F.to_date(F.col("s.ts")).alias("served_date"),
    )
