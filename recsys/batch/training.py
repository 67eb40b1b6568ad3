"""The batch job: events -> interactions -> evaluation -> ALS factors in Delta -> registry -> gate."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch.als import factor_frames, fit_als
from recsys.batch.evaluation import evaluate_models
from recsys.batch.gate import decide
from recsys.batch.interactions import build_interactions
from recsys.batch.registry import RegistryEntry, list_versions, register_candidate, set_status
from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import EVENTS_BRONZE, ITEM_FACTORS, USER_FACTORS
from recsys.spark.delta import conform, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_version: str
    status: str
    reason: str
    metrics: dict
    n_users: int
    n_items: int
    n_interactions: int
    seconds: float


def _write_partition(df: DataFrame, path: str, version: str) -> None:
    """Overwrite just this version's partition: a retried write of the same version replaces, not adds."""
    (df.write.format("delta").mode("overwrite")
     .option("replaceWhere", f"model_version = '{version}'")
     .partitionBy("model_version").save(path))


def _current_ndcg(spark: SparkSession, settings: Settings) -> float | None:
    registry = list_versions(spark, settings)
    version = mv.current_version(registry)
    rows = [r for r in registry if r["model_version"] == version]
    metrics = json.loads(rows[0]["metrics"] or "{}") if rows else {}
    return metrics.get("als", {}).get("ndcg")


def train_and_publish(spark: SparkSession, settings: Settings, run_date: str) -> TrainResult:
    """Train on events up to run_date, evaluate against baselines, write the version, publish if it passes."""
    started = time.time()
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("als"))
    as_of = F.lit(f"{run_date} 23:59:59").cast("timestamp")
    events = read_table(spark, settings, EVENTS_BRONZE).where(F.col("event_date") <= F.lit(run_date))
    interactions = build_interactions(events, settings.events, as_of).persist()
    n_interactions = interactions.count()
    if n_interactions == 0:
        raise ValueError(f"no interactions in {settings.table_path(EVENTS_BRONZE.name)} up to {run_date}")
    span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first()
    version = mv.new_version(run_date)
    log.info("evaluating on %d interactions (split=%s)", n_interactions, settings.evaluation.split)
    metrics = evaluate_models(interactions, settings)
    log.info("training %s on all %d interactions", version, n_interactions)
    user_factors, item_factors = factor_frames(fit_als(interactions, settings.als))
    popularity = interactions.groupBy("item_id").agg(F.countDistinct("user_id").cast("double").alias("popularity"))
    user_out = conform(user_factors.withColumn("model_version", F.lit(version)), spark, USER_FACTORS)
    item_out = conform(item_factors.join(popularity, "item_id").withColumn("model_version", F.lit(version)),
                       spark, ITEM_FACTORS)
    _write_partition(user_out, settings.table_path(USER_FACTORS.name), version)
    _write_partition(item_out, settings.table_path(ITEM_FACTORS.name), version)
    n_users, n_items = user_out.count(), item_out.count()
    interactions.unpersist()
    decision = decide(metrics["als"]["ndcg"], _current_ndcg(spark, settings), settings.gate)
    register_candidate(spark, settings, RegistryEntry(
        model_version=version, run_date=run_date,
        params={**settings.als.model_dump(), "evaluation": settings.evaluation.model_dump(),
                "gate": decision.reason},
        metrics=metrics, data_from=span["lo"], data_to=span["hi"], n_users=n_users, n_items=n_items,
        n_interactions=n_interactions))
    status = mv.PUBLISHED if decision.publish else mv.REJECTED
    set_status(spark, settings, version, status)
    seconds = time.time() - started
    log.info("model %s %s (%s): %d users, %d items in %.1fs", version, status, decision.reason, n_users,
             n_items, seconds)
    return TrainResult(version, status, decision.reason, metrics, n_users, n_items, n_interactions, seconds)
