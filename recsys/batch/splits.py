"""Hold out part of each user's interactions for testing (never used for training or tuning)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys.config import EvaluationConfig


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
