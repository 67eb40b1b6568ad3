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


def validation_cut(events: DataFrame, cfg: ValidationConfig) -> tuple[DataFrame, DataFrame, float]:
    """(before, after, cut epoch seconds): the events split by one time cut `last_days` before the last event.

    What tuning and the gate score on has the shape of the test a shop faces: one calendar cut for every
    shopper, "now" at the cut, what each known shopper takes up afterwards (`cut_split`). A per-shopper cut
    put each shopper's window at another date, which hides what a shop's season does to popularity and
    recency. When the window would hold more than `max_fraction` of the events (a short history), the cut
    moves later, so that most events still train the model.
    """
    ts = F.col("ts").cast("double")
    last, latest_allowed = events.agg(F.max(ts), F.percentile_approx(ts, 1.0 - cfg.max_fraction)).first()
    if last is None:
        raise ValueError("no events to cut a validation window from")
    cut = max(float(last) - cfg.last_days * 86_400.0, float(latest_allowed))
    return events.where(ts <= F.lit(cut)), events.where(ts > F.lit(cut)), cut


def cut_split(train_interactions: DataFrame, later: DataFrame) -> DataFrame:
    """The held-out pairs of a time cut: (user_id, item_id) a known shopper took up after the cut and never
    had before it (`later` holds the interactions after the cut, `train_interactions` those before)."""
    known = train_interactions.select("user_id").distinct()
    return (later.select("user_id", "item_id").distinct().join(known, "user_id")
            .join(train_interactions.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti"))
