"""Hold out part of each user's interactions for testing (never used for training or tuning)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys.config import EvaluationConfig, ValidationConfig


def split_per_user(interactions: DataFrame, fraction: float, how: str, seed: int) -> tuple[DataFrame, DataFrame]:
    """(train, test): floor(n * fraction) interactions of each user go to test.

    how="random" picks them at random (the per-user protocol of published MovieLens tables);
    how="time" holds out each user's latest ones (what a shop will face tomorrow).
    The random order is a seeded hash of the pair, not rand(): every stage of a run (tune, evaluate)
    and every re-run recomputes exactly the same split, however the data is partitioned.
    """
    if how not in ("random", "time"):
        raise ValueError(f"unknown split {how!r}")
    order = F.col("_r") if how == "random" else F.col("last_ts").desc()
    per_user = Window.partitionBy("user_id")
    ranked = (interactions.withColumn("_r", F.xxhash64("user_id", "item_id", F.lit(seed)))
              .withColumn("_rn", F.row_number().over(per_user.orderBy(order, "item_id")))
              .withColumn("_n", F.count("*").over(per_user)))
    held_out = F.col("_rn") <= F.floor(F.col("_n") * fraction)
    columns = interactions.columns
    return ranked.where(~held_out).select(columns), ranked.where(held_out).select(columns)


def evaluation_split(interactions: DataFrame, cfg: EvaluationConfig) -> tuple[DataFrame, DataFrame]:
    """(train, test) as the evaluation configures it: the one split tuning, evaluation and benches share."""
    return split_per_user(interactions, cfg.test_fraction, cfg.split, cfg.seed)


def last_days_split(interactions: DataFrame, cfg: ValidationConfig) -> tuple[DataFrame, DataFrame]:
    """(fit, validation): each shopper's items first had in the last `last_days` of their own history.

    What tuning and the gate score on: like tomorrow's task (what will this shopper take up next that they
    never had?), for every shopper whenever their history ends. At most `max_fraction` of a shopper's items
    (the newest) are held out, so a shopper whose whole history is recent still trains the model.
    """
    first = F.coalesce(F.col("first_ts"), F.col("last_ts")) if "first_ts" in interactions.columns \
        else F.col("last_ts")
    per_user = Window.partitionBy("user_id")
    seconds = F.lit(cfg.last_days * 86_400.0)
    ranked = (interactions.withColumn("_first", first)
              .withColumn("_end", F.max("last_ts").over(per_user))
              .withColumn("_rn", F.row_number().over(per_user.orderBy(F.col("_first").desc(), "item_id")))
              .withColumn("_n", F.count("*").over(per_user)))
    held_out = ((F.col("_first").cast("double") > F.col("_end").cast("double") - seconds)
                & (F.col("_rn") <= F.floor(F.col("_n") * cfg.max_fraction)))
    columns = interactions.columns
    return ranked.where(~held_out).select(columns), ranked.where(held_out).select(columns)


def cut_split(train_interactions: DataFrame, later: DataFrame) -> DataFrame:
    """The held-out pairs of a time cut: (user_id, item_id) a known shopper took up after the cut and never
    had before it (`later` holds the interactions after the cut, `train_interactions` those before)."""
    known = train_interactions.select("user_id").distinct()
    return (later.select("user_id", "item_id").distinct().join(known, "user_id")
            .join(train_interactions.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti"))
