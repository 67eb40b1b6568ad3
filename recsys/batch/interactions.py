"""Turn raw events into one implicit-feedback confidence per (user, item)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.config import EventsConfig


def event_weight(weights: dict[str, float]) -> F.Column:
    """A CASE expression mapping event_type to its configured weight (unknown types weigh 0)."""
    expr = None
    for event_type, weight in weights.items():
        cond = F.col("event_type") == event_type
        expr = F.when(cond, F.lit(weight)) if expr is None else expr.when(cond, F.lit(weight))
    return expr.otherwise(F.lit(0.0)) if expr is not None else F.lit(0.0)


def build_interactions(events: DataFrame, cfg: EventsConfig) -> DataFrame:
    """(user_id, item_id, strength): weighted event counts, de-duplicated by event_id, kept if > 0."""
    deduped = events.dropDuplicates(["event_id"])
    return (deduped
            .withColumn("w", event_weight(cfg.weights) * F.coalesce(F.col("quantity"), F.lit(1)))
            .groupBy("user_id", "item_id")
            .agg(F.sum("w").alias("strength"))
            .where(F.col("strength") > 0))
