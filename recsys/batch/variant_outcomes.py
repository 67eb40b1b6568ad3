"""CTR and conversion per A/B variant, read from Delta: served lists joined with the events attributed to them.

An event counts for a list only when its context names the list (recsys.contracts.served.CONTEXT_REC_ID)
and the list was served to the event's user and showed the event's item, so a client cannot credit a
list it was not shown. The variant comes from the served record, not from the event. Each (list, item)
counts once per event type however often it was clicked or bought (client retries, repeat clicks), and
each list once however often the recorder delivered it.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts.served import CONTEXT_REC_ID
from recsys.contracts.tables import EVENTS_BRONZE, RECOMMENDATIONS_SERVED
from recsys.spark.delta import read_table

# Event types (recsys.contracts.events.EVENT_TYPES) that make a click and a purchase of a shown item.
CLICK = "click"
PURCHASE = "purchase"
COLUMNS = ("experiment", "variant", "served", "users", "items_shown", "clicks", "purchases", "ctr", "conversion")


def _since(df: DataFrame, column: str, since: date | str | None) -> DataFrame:
    return df if since is None else df.where(F.col(column) >= F.lit(str(since)).cast("date"))


def variant_metrics(spark: SparkSession, settings: Settings, since: date | str | None = None,
                    experiment: str | None = None) -> DataFrame:
    """One row per (experiment, variant) with lists served on or after `since` (UTC date; None = all):

    served (lists), users, items_shown (items in those lists), clicks and purchases (distinct (list, item)
    pairs with an attributed click / purchase), ctr = clicks / items_shown, conversion = purchases /
    items_shown (NULL without items shown). `experiment` keeps one experiment (None = every one, "off" included).
    """
    served = _since(read_table(spark, settings, RECOMMENDATIONS_SERVED), "served_date", since)
    if experiment is not None:
        served = served.where(F.col("experiment") == experiment)
    served = served.dropDuplicates(["rec_id"]).withColumn("item_ids", F.array_distinct("item_ids"))
    lists = served.groupBy("experiment", "variant").agg(
        F.count("*").alias("served"), F.countDistinct("user_id").alias("users"),
        F.sum(F.size("item_ids")).alias("items_shown"))

    shown = served.select("rec_id", "user_id", "experiment", "variant", F.explode("item_ids").alias("item_id"))
    events = (_since(read_table(spark, settings, EVENTS_BRONZE), "event_date", since)
              .where(F.col("event_type").isin(CLICK, PURCHASE))
              .select(F.col("context").getItem(CONTEXT_REC_ID).alias("rec_id"), "user_id", "item_id", "event_type")
              .where(F.col("rec_id").isNotNull())
              .dropDuplicates(["rec_id", "user_id", "item_id", "event_type"]))
    attributed = events.join(shown, ["rec_id", "user_id", "item_id"]).groupBy("experiment", "variant").agg(
        F.count(F.when(F.col("event_type") == CLICK, 1)).alias("clicks"),
        F.count(F.when(F.col("event_type") == PURCHASE, 1)).alias("purchases"))

    out = (lists.join(attributed, ["experiment", "variant"], "left")
           .fillna(0, subset=["clicks", "purchases"])
           .withColumn("ctr", F.col("clicks") / F.when(F.col("items_shown") > 0, F.col("items_shown")))
           .withColumn("conversion", F.col("purchases") / F.when(F.col("items_shown") > 0, F.col("items_shown"))))
    return out.select(*COLUMNS).orderBy("experiment", "variant")
