"""Offline evaluation: ALS against baselines on a held-out split, scored by Spark's RankingEvaluator."""

from __future__ import annotations

import logging

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.batch.als import fit_als, recommend_all
from recsys.batch.item_knn import item_knn_candidates
from recsys.batch.splits import split_per_user
from recsys.config import Settings

log = logging.getLogger(__name__)
SPARK_METRICS = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK",
                 "map": "meanAveragePrecisionAtK"}


def unseen_top_k(candidates: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """(user_id, items): candidates minus what the user interacted with in training, cut to k."""
    joined = candidates.join(seen, "user_id", "left").withColumn(
        "seen", F.coalesce("seen", F.array().cast("array<string>")))
    return joined.select("user_id", F.slice(F.filter("items", lambda x: ~F.array_contains("seen", x)), 1, k)
                         .alias("items"))


def popularity_candidates(train: DataFrame, users: DataFrame, n: int) -> DataFrame:
    """(user_id, items): the n items most users interacted with, the same list for everyone."""
    top = (train.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
           .orderBy(F.desc("users"), "item_id").limit(n).collect())
    return users.select("user_id", F.array(*[F.lit(r["item_id"]) for r in top]).alias("items"))


def ranking_metrics(recs: DataFrame, truth: DataFrame, k: int, catalogue_size: int) -> dict[str, float]:
    """Spark's RankingEvaluator at k on users with held-out items, plus catalogue coverage.

    Item ids are hashed to doubles (RankingEvaluator wants numbers); a 64-bit hash makes a collision
    between a recommended and a held-out item negligible.
    """
    as_double = lambda c: F.transform(c, lambda x: F.xxhash64(x).cast("double"))  # noqa: E731
    scored = (truth.join(recs, "user_id", "left")
              .select(as_double(F.coalesce("items", F.array().cast("array<string>"))).alias("prediction"),
                      as_double("label").alias("label"))).persist()
    out = {name: RankingEvaluator(k=k, metricName=metric, predictionCol="prediction", labelCol="label")
           .evaluate(scored) for name, metric in SPARK_METRICS.items()}
    scored.unpersist()
    out["coverage"] = recs.select(F.explode("items")).distinct().count() / max(catalogue_size, 1)
    return out


def evaluate_models(interactions: DataFrame, settings: Settings) -> dict[str, dict[str, float]]:
    """Fit ALS and the baselines on the train split and score all on the test split."""
    cfg = settings.evaluation
    train, test = split_per_user(interactions, cfg.test_fraction, cfg.split, cfg.seed)
    train, test = train.persist(), test.persist()
    truth = test.groupBy("user_id").agg(F.collect_list("item_id").alias("label"))
    seen = train.groupBy("user_id").agg(F.collect_set("item_id").alias("seen")).persist()
    max_seen = seen.agg(F.max(F.size("seen"))).first()[0] or 0
    catalogue = train.select("item_id").distinct().count()
    fetch = min(cfg.k + max_seen, catalogue)
    candidates = {"als": recommend_all(fit_als(train, settings.als), fetch)}
    if "popularity" in cfg.baselines:
        candidates["popularity"] = popularity_candidates(train, seen.select("user_id"), fetch)
    if "item_knn" in cfg.baselines:
        candidates["item_knn"] = item_knn_candidates(train, fetch, cfg.knn_neighbours)
    results = {}
    for name, cands in candidates.items():
        results[name] = ranking_metrics(unseen_top_k(cands, seen, cfg.k), truth, cfg.k, catalogue)
        log.info("%s: %s", name, {m: round(v, 4) for m, v in results[name].items()})
    for df in (train, test, seen):
        df.unpersist()
    return results
