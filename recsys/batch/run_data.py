"""What a run date trains on: its bronze events less those of erased users, their interactions, and the
interactions its train stage keeps for the later stages (the run_interactions table). The train, sequence and
evaluate stages all start here."""

from __future__ import annotations

import logging
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch.interactions import build_interactions, drop_erased
from recsys.config import Settings
from recsys.contracts.tables import EVENTS_BRONZE, RUN_INTERACTIONS, USER_ERASURES
from recsys.spark.delta import conform, read_table

log = logging.getLogger(__name__)


def end_of(run_date: str) -> float:
    """The last second of the run date (UTC), as epoch seconds: the run's "now"."""
    return datetime.fromisoformat(f"{run_date}T23:59:59+00:00").timestamp()


def events_up_to(spark: SparkSession, settings: Settings, run_date: str) -> DataFrame:
    """Every bronze event up to run_date, less those of erased users: what a run trains on."""
    events = read_table(spark, settings, EVENTS_BRONZE).where(F.col("event_date") <= F.lit(run_date).cast("date"))
    return _without_erased(spark, settings, events)


def interactions_up_to(spark: SparkSession, settings: Settings, run_date: str,
                       events: DataFrame | None = None) -> tuple[DataFrame, dict]:
    """The persisted interactions of every event up to run_date (or of `events`), and the events' time range."""
    events = events_up_to(spark, settings, run_date) if events is None else events
    as_of = F.lit(end_of(run_date)).cast("timestamp")
    interactions = build_interactions(events, settings.events, as_of,
                                      settings.serving.repurchase.owned_events).persist()
    if interactions.isEmpty():
        raise ValueError(f"no interactions in {settings.table_path(EVENTS_BRONZE.name)} up to {run_date}")
    span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first().asDict()
    return interactions, span


def kept_interactions(spark: SparkSession, settings: Settings, run_date: str) -> DataFrame:
    """The run date's interactions as its train stage kept them (persisted); built again from bronze when
    they are not there (the train of another run date has replaced them since)."""
    path = settings.table_path(RUN_INTERACTIONS.name)
    if DeltaTable.isDeltaTable(spark, path):
        kept = spark.read.format("delta").load(path).where(F.col("run_date") == run_date).drop("run_date")
        if not kept.isEmpty():
            log.info("read the interactions the train stage kept for %s", run_date)
            return kept.persist()
    log.info("no interactions kept for %s: building them from %s", run_date, EVENTS_BRONZE.name)
    return interactions_up_to(spark, settings, run_date)[0]


def keep_interactions(interactions: DataFrame, settings: Settings, run_date: str) -> None:
    """Write the run date's interactions for its later stages, replacing any other run date's."""
    out = conform(interactions.withColumn("run_date", F.lit(run_date)), interactions.sparkSession, RUN_INTERACTIONS)
    out.write.format("delta").mode("overwrite").partitionBy("run_date").save(settings.table_path(RUN_INTERACTIONS.name))


def _without_erased(spark: SparkSession, settings: Settings, events: DataFrame) -> DataFrame:
    """Drop the events of erased users (recorded by DELETE /v1/users/<id>) once that table exists."""
    path = settings.table_path(USER_ERASURES.name)
    if not DeltaTable.isDeltaTable(spark, path):
        return events
    return drop_erased(events, spark.read.format("delta").load(path))
