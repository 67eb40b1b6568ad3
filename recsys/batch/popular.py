"""Popular items overall and per user segment: what a new user is shown before ALS knows them."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys.config import OutputsConfig
from recsys.contracts.segments import EVERYONE, segment_keys


def popular_items(interactions: DataFrame, users: DataFrame, cfg: OutputsConfig) -> DataFrame:
    """(segment, item_id, score, rank): the top items of every segment with enough users, rank 1 first.

    score = distinct users of the segment who interacted with the item, so one heavy buyer cannot
    make an item popular; ties go to the larger decayed strength.
    """
    names = list(cfg.segment_attributes)

    def keyed(batches):
        for batch in batches:
            rows = [(u, key) for u, attrs in zip(batch["user_id"], batch[names].to_dict("records"), strict=True)
                    for key in segment_keys(attrs, names) if key != EVERYONE]
            yield pd.DataFrame(rows, columns=["user_id", "segment"])

    user_segments = users.select("user_id", *names).mapInPandas(keyed, "user_id string, segment string")
    everyone = interactions.select("user_id").distinct().withColumn("segment", F.lit(EVERYONE))
    segments = user_segments.unionByName(everyone).distinct()
    big_enough = (segments.groupBy("segment").agg(F.count("*").alias("users"))
                  .where((F.col("users") >= cfg.min_segment_users) | (F.col("segment") == EVERYONE)).select("segment"))
    scored = (interactions.join(segments.join(big_enough, "segment"), "user_id")
              .groupBy("segment", "item_id")
              .agg(F.countDistinct("user_id").cast("double").alias("score"), F.sum("strength").alias("strength")))
    rank = F.row_number().over(Window.partitionBy("segment").orderBy(F.desc("score"), F.desc("strength"), "item_id"))
    return (scored.withColumn("rank", rank).where(F.col("rank") <= cfg.popular_items)
            .select("segment", "item_id", "score", "rank"))
