"""Scoring top-k candidate lists against held-out interactions: Spark's RankingEvaluator, and the same
metrics from one collect of a bounded user sample (what evaluation uses)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.batch.blocked_topk import sample_users
from recsys.batch.reference_metrics import coverage, mean_metrics

SPARK_METRICS = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK",
                 "map": "meanAveragePrecisionAtK"}


@dataclass(frozen=True)
class HeldOut:
    """What every model is scored against: held-out items per user and what each user already had."""

    truth: DataFrame  # user_id, label: held-out items of the scored users
    seen: DataFrame  # user_id, seen: training items of the scored users, never recommended back
    users: DataFrame  # user_id: the scored users, a seeded sample of those with held-out items
    k: int
    fetch: int  # candidates to ask a model for, so that k remain after removing seen items
    catalogue: int  # distinct training items, the denominator of coverage

    @classmethod
    def build(cls, train: DataFrame, test: DataFrame, k: int, max_users: int = 0, seed: int = 0) -> HeldOut:
        """Held-out items of at most max_users users with any (0 = all; a seeded hash sample, blocked_topk)."""
        users = sample_users(test, max_users, seed).persist()
        truth = (test.join(users, "user_id", "left_semi").groupBy("user_id")
                 .agg(F.collect_list("item_id").alias("label")).persist())
        seen = (train.join(users, "user_id", "left_semi").groupBy("user_id")
                .agg(F.collect_set("item_id").alias("seen")).persist())
        max_seen = seen.agg(F.max(F.size("seen"))).first()[0] or 0
        catalogue = train.select("item_id").distinct().count()
        return cls(truth, seen, users, k, max(min(k + max_seen, catalogue), 1), catalogue)

    def restrict(self, frame: DataFrame) -> DataFrame:
        """The rows of `frame` (with a user_id) that belong to the scored users."""
        return frame.join(self.users, "user_id", "left_semi")

    def unpersist(self) -> None:
        self.truth.unpersist()
        self.seen.unpersist()
        self.users.unpersist()


def unseen_top_k(candidates: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """(user_id, items): candidates minus what the user interacted with in training, cut to k."""
    joined = candidates.join(seen, "user_id", "left").withColumn(
        "seen", F.coalesce("seen", F.array().cast("array<string>")))
    return joined.select("user_id", F.slice(F.filter("items", lambda x: ~F.array_contains("seen", x)), 1, k)
                         .alias("items"))


def ranking_metrics(recs: DataFrame, truth: DataFrame, k: int, catalogue_size: int) -> dict[str, float]:
    """Spark's RankingEvaluator at k on users with held-out items, plus catalogue coverage.

    Item ids are hashed to doubles (RankingEvaluator wants numbers); a 64-bit hash makes a collision
    between a recommended and a held-out item negligible.
    """
    from pyspark.ml.evaluation import RankingEvaluator  # the reference only: no pyspark.ml imports elsewhere

    as_double = lambda c: F.transform(c, lambda x: F.xxhash64(x).cast("double"))  # noqa: E731
    scored = (truth.join(recs, "user_id", "left")
              .select(as_double(F.coalesce("items", F.array().cast("array<string>"))).alias("prediction"),
                      as_double("label").alias("label"))).persist()
    out = {name: RankingEvaluator(k=k, metricName=metric, predictionCol="prediction", labelCol="label")
           .evaluate(scored) for name, metric in SPARK_METRICS.items()}
    scored.unpersist()
    out["coverage"] = recs.select(F.explode("items")).distinct().count() / max(catalogue_size, 1)
    return out


def collected_metrics(recs: DataFrame, truth: DataFrame, k: int, catalogue_size: int) -> dict[str, float]:
    """The metrics of ranking_metrics from one collect: each held-out user's list and items, scored on the
    driver with the reference definitions (reference_metrics, held to Spark's by the tests).

    For a bounded user sample (evaluation.max_users x k ids): one Spark job instead of RankingEvaluator's
    four passes and coverage's distinct count, for every model of every evaluation.
    """
    rows = truth.join(recs, "user_id", "left").select("user_id", "label", "items").toArrow()
    users = rows.column("user_id").to_pylist()
    rankings = dict(zip(users, (items or [] for items in rows.column("items").to_pylist()), strict=True))
    held = dict(zip(users, (set(label) for label in rows.column("label").to_pylist()), strict=True))
    out = mean_metrics(rankings, held, k)
    out["coverage"] = coverage(rankings.values(), catalogue_size)
    return out


def score_candidates(candidates: DataFrame, held_out: HeldOut) -> dict[str, float]:
    """(user_id, items best first) -> NDCG, precision, recall, MAP at k and coverage, on the scored users
    (candidates of anyone else are left out, so coverage is over the same users as the metrics)."""
    top = unseen_top_k(held_out.restrict(candidates), held_out.seen, held_out.k)
    return collected_metrics(top, held_out.truth, held_out.k, held_out.catalogue)
