"""Item-kNN baseline: item-item cosine on who-interacted-with-what, scored by summing neighbours."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def item_similarities(train: DataFrame, neighbours: int) -> DataFrame:
    """(item_id, other_id, sim, rank): each item's `neighbours` most cosine-similar items (binary vectors)."""
    pairs_in = train.select("user_id", "item_id").distinct()
    norms = pairs_in.groupBy("item_id").agg(F.sqrt(F.count("*")).alias("norm"))
    a, b = pairs_in.alias("a"), pairs_in.alias("b")
    co = (a.join(b, "user_id").where(F.col("a.item_id") != F.col("b.item_id"))
          .groupBy(F.col("a.item_id").alias("item_id"), F.col("b.item_id").alias("other_id"))
          .agg(F.count("*").alias("co")))
    sims = (co.join(norms, "item_id")
            .join(norms.withColumnRenamed("item_id", "other_id").withColumnRenamed("norm", "other_norm"), "other_id")
            .select("item_id", "other_id", (F.col("co") / (F.col("norm") * F.col("other_norm"))).alias("sim")))
    rank = F.row_number().over(Window.partitionBy("item_id").orderBy(F.desc("sim"), "other_id"))
    return sims.withColumn("rank", rank).where(F.col("rank") <= neighbours)


def item_knn_candidates(train: DataFrame, n: int, neighbours: int, users: DataFrame | None = None) -> DataFrame:
    """(user_id, items): the n items with the highest summed similarity to the user's items, best first.

    Similarities come from all of `train`; only `users` (user_id; None = everyone) are scored.
    """
    sims = item_similarities(train, neighbours)
    own = train if users is None else train.join(users, "user_id", "left_semi")
    scores = (own.select("user_id", "item_id").distinct().join(sims, "item_id")
              .groupBy("user_id", F.col("other_id").alias("item_id")).agg(F.sum("sim").alias("score")))
    rank = F.row_number().over(Window.partitionBy("user_id").orderBy(F.desc("score"), "item_id"))
    top = scores.withColumn("pos", rank).where(F.col("pos") <= n)
    return (top.groupBy("user_id").agg(F.array_sort(F.collect_list(F.struct("pos", "item_id"))).alias("r"))
            .select("user_id", F.transform("r", lambda x: x["item_id"]).alias("items")))
