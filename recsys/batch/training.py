"""Train implicit ALS on the bronze events and write a versioned, registered model to Delta."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch.indexing import dense_index
from recsys.batch.interactions import build_interactions
from recsys.batch.registry import RegistryEntry, register_candidate, set_status
from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import EVENTS_BRONZE, ITEM_FACTORS, USER_FACTORS
from recsys.spark.delta import conform, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_version: str
    status: str
    n_users: int
    n_items: int
    n_interactions: int
    seconds: float


def fit_als(interactions: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    """Fit ALS on (user_id, item_id, strength); return (user_factors, item_factors) keyed by string ids."""
    users = dense_index(interactions, "user_id", "uidx")
    items = dense_index(interactions, "item_id", "iidx")
    indexed = interactions.join(users, "user_id").join(items, "item_id")
    cfg = settings.als
    als = ALS(rank=cfg.rank, maxIter=cfg.max_iter, regParam=cfg.reg_param, alpha=cfg.alpha,
              implicitPrefs=True, userCol="uidx", itemCol="iidx", ratingCol="strength",
              seed=cfg.seed, checkpointInterval=cfg.checkpoint_interval, nonnegative=False)
    model = als.fit(indexed)
    user_factors = model.userFactors.join(users, F.col("id") == F.col("uidx")).select(
        "user_id", F.col("features").cast("array<float>").alias("factors"))
    item_factors = model.itemFactors.join(items, F.col("id") == F.col("iidx")).select(
        "item_id", F.col("features").cast("array<float>").alias("factors"))
    return user_factors, item_factors


def _write_partition(df: DataFrame, path: str, version: str) -> None:
    """Overwrite just this version's partition: a retried write of the same version replaces, not adds."""
    (df.write.format("delta").mode("overwrite")
     .option("replaceWhere", f"model_version = '{version}'")
     .partitionBy("model_version").save(path))


def train_and_publish(spark: SparkSession, settings: Settings, run_date: str) -> TrainResult:
    """The batch job: events -> interactions -> ALS -> factors in Delta -> registry -> gate -> publish."""
    started = time.time()
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("als"))
    events = read_table(spark, settings, EVENTS_BRONZE).where(F.col("event_date") <= F.lit(run_date))
    interactions = build_interactions(events, settings.events).persist()
    n_interactions = interactions.count()
    if n_interactions == 0:
        raise ValueError(f"no interactions in {settings.table_path(EVENTS_BRONZE.name)} up to {run_date}")
    span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first()
    version = mv.new_version(run_date)
    log.info("training %s on %d interactions", version, n_interactions)
    user_factors, item_factors = fit_als(interactions, settings)
    popularity = interactions.groupBy("item_id").agg(F.countDistinct("user_id").cast("double").alias("popularity"))
    user_out = conform(user_factors.withColumn("model_version", F.lit(version)), spark, USER_FACTORS)
    item_out = conform(item_factors.join(popularity, "item_id").withColumn("model_version", F.lit(version)),
                       spark, ITEM_FACTORS)
    _write_partition(user_out, settings.table_path(USER_FACTORS.name), version)
    _write_partition(item_out, settings.table_path(ITEM_FACTORS.name), version)
    n_users, n_items = user_out.count(), item_out.count()
    interactions.unpersist()
    register_candidate(spark, settings, RegistryEntry(
        model_version=version, run_date=run_date, params=settings.als.model_dump(), metrics={},
        data_from=span["lo"], data_to=span["hi"], n_users=n_users, n_items=n_items,
        n_interactions=n_interactions))
    status = mv.PUBLISHED if n_users > 0 and n_items > 0 else mv.REJECTED
    set_status(spark, settings, version, status)
    seconds = time.time() - started
    log.info("model %s %s: %d users, %d items in %.1fs", version, status, n_users, n_items, seconds)
    return TrainResult(version, status, n_users, n_items, n_interactions, seconds)
