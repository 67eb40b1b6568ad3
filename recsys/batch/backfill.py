"""Load historical events and catalogue rows straight into Delta (bulk backfill, demo, benchmarks).

Live events go through Kafka and the stream; history is appended here with the same bronze schema,
de-duplicated by (user_id, event_id) so a repeated load adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, EVENTS_BRONZE, EVENTS_QUARANTINE, ITEMS, USERS, TableSpec
from recsys.spark.delta import conform, ensure_table


def from_pandas(spark: SparkSession, pdf: pd.DataFrame, ddl: str) -> DataFrame:
    """Arrow-backed conversion with the contract's column order; missing columns become NULL."""
    columns = TableSpec("input", ddl).columns
    out = pdf.reindex(columns=columns)
    for missing in set(columns) - set(pdf.columns):
        out[missing] = pd.Series([None] * len(out), dtype=object, index=out.index)
    return spark.createDataFrame(out, ddl)


def append_events(spark: SparkSession, settings: Settings, events: pd.DataFrame | DataFrame) -> None:
    """Merge events into bronze on (user_id, event_id): new events are inserted, known ones are left alone.
    They never went through Kafka: no Kafka coordinates, and ingested_at is their ingestion time."""
    df = events if isinstance(events, DataFrame) else from_pandas(spark, events, EVENT_PAYLOAD_DDL)
    rows = (df.dropDuplicates(["user_id", "event_id"])
            .withColumn("kafka_topic", F.lit(None).cast("string"))
            .withColumn("kafka_partition", F.lit(None).cast("int"))
            .withColumn("kafka_offset", F.lit(None).cast("bigint"))
            .withColumn("kafka_timestamp", F.lit(None).cast("timestamp"))
            .withColumn("ingested_at", F.current_timestamp())
            .withColumn("event_date", F.to_date("ts")))
    table = ensure_table(spark, settings, EVENTS_BRONZE)
    (table.alias("t").merge(conform(rows, spark, EVENTS_BRONZE).alias("s"),
                            "t.user_id = s.user_id AND t.event_id = s.event_id")
     .whenNotMatchedInsertAll().execute())


def upsert_rows(spark: SparkSession, settings: Settings, spec: TableSpec, key: str,
                rows: pd.DataFrame | DataFrame) -> None:
    """Insert or update catalogue/user rows by key (latest attributes win)."""
    df = rows if isinstance(rows, DataFrame) else from_pandas(spark, rows, spec.ddl)
    df = conform(df.withColumn("updated_at", F.coalesce(F.col("updated_at"), F.current_timestamp()))
                 if "updated_at" in df.columns else df.withColumn("updated_at", F.current_timestamp()),
                 spark, spec).dropDuplicates([key])
    table: DeltaTable = ensure_table(spark, settings, spec)
    (table.alias("t").merge(df.alias("s"), f"t.{key} = s.{key}")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())


def upsert_items(spark: SparkSession, settings: Settings, items: pd.DataFrame | DataFrame) -> None:
    upsert_rows(spark, settings, ITEMS, "item_id", items)


def upsert_users(spark: SparkSession, settings: Settings, users: pd.DataFrame | DataFrame) -> None:
    upsert_rows(spark, settings, USERS, "user_id", users)


def quarantine_rejects(spark: SparkSession, settings: Settings, rejects: pd.DataFrame) -> int:
    """Merge a file load's rejects (recsys.data.file_loader) into events_quarantine; returns the rows given.

    Each row keeps its reason, a detail naming the file (by name) and row, and its raw values as JSON; a
    row already quarantined with the same detail and raw values is left alone, so loading again adds
    nothing. The Kafka columns stay NULL: that is how the data-quality check tells loads from the stream.
    """
    if rejects.empty:
        return 0
    names = rejects["source"].map(lambda source: Path(str(source)).name)
    pdf = pd.DataFrame({
        "reason": rejects["reason"].to_numpy(),
        "detail": (names + " " + rejects["table"] + " row " + rejects["row"].astype(str) + ": "
                   + rejects["detail"]).to_numpy(),
        "raw": rejects["raw"].map(lambda text: text.encode()).to_numpy(),
    })
    rows = (spark.createDataFrame(pdf, "reason STRING, detail STRING, raw BINARY")
            .dropDuplicates(["detail", "raw"])
            .withColumn("quarantined_at", F.current_timestamp())
            .withColumn("quarantine_date", F.current_date()))
    for column in ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"):
        rows = rows.withColumn(column, F.lit(None))
    table = ensure_table(spark, settings, EVENTS_QUARANTINE)
    (table.alias("t").merge(conform(rows, spark, EVENTS_QUARANTINE).alias("s"),
                            "t.kafka_topic IS NULL AND t.detail = s.detail AND t.raw = s.raw")
     .whenNotMatchedInsertAll().execute())
    return len(rejects)


def load_shop(spark: SparkSession, settings: Settings, shop,
              on_table: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write a ShopData (recsys.data) into the items, users and bronze tables; returns row counts.

    on_table, if given, is called with "items", "users" and "events" before each table is written."""
    for name, write, rows in (("items", upsert_items, shop.items), ("users", upsert_users, shop.users),
                              ("events", append_events, shop.events)):
        if on_table is not None:
            on_table(name)
        write(spark, settings, rows)
    return {"items": len(shop.items), "users": len(shop.users), "events": len(shop.events)}
