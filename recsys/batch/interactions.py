"""Turn raw events into one implicit-feedback confidence per (user, item)."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys.config import EventsConfig
from recsys.contracts.events import QUANTITY_MODES

SECONDS_PER_DAY = 86_400


def event_weight(weights: dict[str, float]) -> Column:
    """A CASE expression mapping event_type to its configured weight (unknown types weigh 0)."""
    expr = None
    for event_type, weight in weights.items():
        cond = F.col("event_type") == event_type
        expr = F.when(cond, F.lit(weight)) if expr is None else expr.when(cond, F.lit(weight))
    return expr.otherwise(F.lit(0.0)) if expr is not None else F.lit(0.0)


def quantity_factor(mode: str) -> Column:
    """How an event's quantity scales its weight (events.quantity): "ignore" (each event counts once),
    "log" (1 + ln quantity) or "linear". Wholesale orders of 12 or 480 of one item say how a shop restocks,
    not how much more a shopper likes it: counted linearly they drown every other shopper's taste."""
    if mode not in QUANTITY_MODES:
        raise ValueError(f"unknown events.quantity {mode!r}")
    quantity = F.greatest(F.coalesce(F.col("quantity"), F.lit(1)), F.lit(1)).cast("double")
    if mode == "ignore":
        return F.lit(1.0)
    if mode == "log":
        return F.lit(1.0) + F.log(quantity)
    return quantity


def time_decay(as_of: Column, half_life_days: float) -> Column:
    """0.5 ** (age / half-life): yesterday's purchase counts more than last year's."""
    age_days = (as_of.cast("double") - F.col("ts").cast("double")) / SECONDS_PER_DAY
    return F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / half_life_days)


def build_interactions(events: DataFrame, cfg: EventsConfig, as_of: Column,
                       owned_events: Sequence[str] = ()) -> DataFrame:
    """(user_id, item_id, strength, first_ts, last_ts, owned_ts): weighted event counts (scaled by quantity as
    events.quantity says) decayed to as_of,
    de-duplicated by (user_id, event_id): an event_id is the client's, unique per shopper only (two clients
    may both send "1").

    Negative weights (remove_from_cart, cancellations) lower a strength; pairs that end at or below
    zero are dropped, since implicit ALS reads them as "no preference". first_ts says when the shopper
    first had the item (what a time split holds out); owned_ts is the last event of an `owned_events`
    type (a purchase: what the repurchase policy looks at), null when there is none.
    """
    weighted = (events.dropDuplicates(["user_id", "event_id"])
                .withColumn("w", event_weight(cfg.weights) * quantity_factor(cfg.quantity)
                            * time_decay(as_of, cfg.half_life_days)))
    owned = F.col("event_type").isin(list(owned_events)) if owned_events else F.lit(False)
    return (weighted.groupBy("user_id", "item_id")
            .agg(F.sum("w").alias("strength"), F.min("ts").alias("first_ts"), F.max("ts").alias("last_ts"),
                 F.max(F.when(owned, F.col("ts"))).alias("owned_ts"))
            .where(F.col("strength") > 0))


def rebuilt_pairs(pairs: DataFrame, events: DataFrame, cfg: EventsConfig, as_of: Column,
                  owned_events: Sequence[str] = ()) -> DataFrame:
    """The interactions of the (user_id, item_id) pairs of `pairs` built again from their `events` with `cfg`
    (another half-life, say): a split's pairs stay the same, only their strengths change."""
    mine = events.join(pairs.select("user_id", "item_id"), ["user_id", "item_id"], "left_semi")
    return build_interactions(mine, cfg, as_of, owned_events)


def ingestion_time(events: DataFrame, alias: str = "e") -> Column:
    """When each event entered the system: its Kafka timestamp, else (backfilled rows) when bronze got it.
    Never the client's ts, which may lie up to events.max_future_skew_s ahead."""
    cols = [F.col(f"{alias}.{c}") for c in ("kafka_timestamp", "ingested_at") if c in events.columns]
    if not cols:
        raise ValueError("events need kafka_timestamp or ingested_at to be checked against erasures")
    return F.coalesce(*cols)


def drop_erased(events: DataFrame, erasures: DataFrame) -> DataFrame:
    """Events without those of erased users ingested up to their latest erasure (ingestion_time <= erased_at).

    Forgetting a user deletes their bronze rows, but events they sent before that may still have been in
    Kafka and reached bronze afterwards; this keeps them out (of bronze and of training). Events ingested
    after the erasure are new activity and stay. Left anti join on the (small) user_erasures table.
    """
    latest = erasures.groupBy("user_id").agg(F.max("erased_at").alias("erased_at"))
    erased = (F.col("e.user_id") == F.col("x.user_id")) & (ingestion_time(events) <= F.col("x.erased_at"))
    return events.alias("e").join(F.broadcast(latest.alias("x")), erased, "left_anti")
