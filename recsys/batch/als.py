"""Implicit-feedback ALS on string ids: fit (MLlib, or conjugate-gradient blocks), export factors, recommend."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch.indexing import dense_index
from recsys.config import AlsConfig, Settings

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel

log = logging.getLogger(__name__)


@contextmanager
def als_checkpoints(spark: SparkSession, settings: Settings) -> Iterator[str]:
    """ALS checkpoints (every als.checkpoint_interval iterations) in a directory of this fit's own under
    checkpoint_path("als"), deleted afterwards when batch.clean_checkpoints: they hold factors and ratings
    of every user trained on, erased ones included, and nothing reads them once the fit is done."""
    path = f"{settings.checkpoint_path('als')}/{uuid.uuid4().hex}"
    spark.sparkContext.setCheckpointDir(path)
    try:
        yield path
    finally:
        if settings.batch.clean_checkpoints:
            jvm_path = spark._jvm.org.apache.hadoop.fs.Path(path)
            jvm_path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(jvm_path, True)
            log.info("deleted the ALS checkpoints in %s", path)


@dataclass(frozen=True)
class FittedAls:
    model: ALSModel
    users: DataFrame  # user_id, uidx
    items: DataFrame  # item_id, iidx


def fit_als(interactions: DataFrame, cfg: AlsConfig) -> FittedAls:
    """Fit on (user_id, item_id, strength) with implicitPrefs; ids are densely indexed first."""
    from pyspark.ml.recommendation import ALS  # pyspark.ml (0.5 s of imports) only in processes that run MLlib

    users = dense_index(interactions, "user_id", "uidx")  # cached and computed already
    items = dense_index(interactions, "item_id", "iidx")
    indexed = interactions.join(users, "user_id").join(items, "item_id")
    # One block per core: Spark's fixed 10 blocks cut a shop's data into more tasks per sweep than a small
    # cluster runs at once (measured on 2 cores: 9.8-15.9 s with 10 blocks, 4.4-4.6 s with 2).
    blocks = cfg.blocks or interactions.sparkSession.sparkContext.defaultParallelism
    als = ALS(rank=cfg.rank, maxIter=cfg.max_iter, regParam=cfg.reg_param, alpha=cfg.alpha,
              implicitPrefs=True, userCol="uidx", itemCol="iidx", ratingCol="strength",
              seed=cfg.seed, checkpointInterval=cfg.checkpoint_interval, nonnegative=False,
              numUserBlocks=blocks, numItemBlocks=blocks)
    return FittedAls(als.fit(indexed), users, items)


def factor_frames(fitted: FittedAls) -> tuple[DataFrame, DataFrame]:
    """(user_id, factors) and (item_id, factors) as float arrays."""
    user_factors = fitted.model.userFactors.join(fitted.users, F.col("id") == F.col("uidx")).select(
        "user_id", F.col("features").cast("array<float>").alias("factors"))
    item_factors = fitted.model.itemFactors.join(fitted.items, F.col("id") == F.col("iidx")).select(
        "item_id", F.col("features").cast("array<float>").alias("factors"))
    return user_factors, item_factors


def als_factors(interactions: DataFrame, cfg: AlsConfig) -> tuple[DataFrame, DataFrame]:
    """(user_id, factors) and (item_id, factors) of implicit ALS on (user_id, item_id, strength), by the
    configured solver (als.solver): conjugate-gradient blocks (recsys.batch.als_cg) or MLlib."""
    if cfg.solver == "cg":
        from recsys.batch.als_cg import fit_cg  # numba compiles on first use: only processes that train pay it

        return fit_cg(interactions, cfg)
    return factor_frames(fit_als(interactions, cfg))


def recommend_all(fitted: FittedAls, n: int) -> DataFrame:
    """(user_id, items): each user's n best items by ALS score, best first."""
    exploded = (fitted.model.recommendForAllUsers(n)
                .select("uidx", F.posexplode("recommendations").alias("pos", "rec"))
                .select("uidx", "pos", F.col("rec.iidx").alias("iidx")))
    ranked = (exploded.join(F.broadcast(fitted.items), "iidx").join(fitted.users, "uidx")
              .groupBy("user_id").agg(F.array_sort(F.collect_list(F.struct("pos", "item_id"))).alias("r")))
    return ranked.select("user_id", F.transform("r", lambda x: x["item_id"]).alias("items"))
