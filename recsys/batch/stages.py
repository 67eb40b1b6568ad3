"""The batch pipeline as stages: train and tune -> evaluate -> gate (+ report) -> publish (the last two in
recsys.batch.release, which imports nothing of Spark).

Each stage is one function (one Airflow task, one spark-submit) that finds its model version in the
registry by run date, so stages can run in separate processes, be retried, and be re-run for the
same date without adding anything: a decided run date is left alone unless retraining is forced.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys import tracking
from recsys.batch import registry
from recsys.batch.als import als_checkpoints
from recsys.batch.data_quality import require_quality
from recsys.batch.evaluation import evaluate_models
from recsys.batch.outputs import build_outputs
from recsys.batch.release import gate_stage, publish_stage
from recsys.batch.run_data import end_of, events_up_to, interactions_up_to, keep_interactions, kept_interactions
from recsys.batch.splits import evaluation_split
from recsys.batch.stage_result import StageResult, entry_for
from recsys.batch.tuning import capped, decayed_with, tune_als
from recsys.config import AlsConfig, MergeWeights, Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import (
    ITEM_CONTENT,
    ITEM_FACTORS,
    ITEMS,
    USER_FACTORS,
    USERS,
    TableSpec,
)
from recsys.spark.concurrent import concurrently
from recsys.spark.delta import conform, read_table

log = logging.getLogger(__name__)


def _write_version(df: DataFrame, spec: TableSpec, settings: Settings, version: str) -> None:
    """Overwrite just this version's partition: a retried write replaces, never adds."""
    out = conform(df.withColumn("model_version", F.lit(version)), df.sparkSession, spec)
    (out.write.format("delta").mode("overwrite").option("replaceWhere", f"model_version = '{version}'")
     .partitionBy("model_version").save(settings.table_path(spec.name)))


def _version_to_train(spark: SparkSession, settings: Settings, run_date: str, force: bool) -> tuple[str, dict | None]:
    """(version, None) claimed for this attempt, or (version, its row) when the run date needs no training: it
    was decided, or an attempt already trained it (a candidate or approved version the next stages continue).
    A version still `training` is another attempt's: claim_version refuses while its claim holds."""
    latest = registry.latest_for_run_date(settings, run_date)
    if latest is not None and not force and latest["status"] != mv.TRAINING:
        return latest["model_version"], latest
    return registry.claim_version(settings, run_date, force), None


def train_stage(spark: SparkSession, settings: Settings, run_date: str, force: bool = False) -> StageResult:
    """Tune ALS on the train split, fit it on all interactions and write every per-version output."""
    version, decided = _version_to_train(spark, settings, run_date, force)
    if decided is not None:
        detail = ("run date already decided; --force retrains" if decided["status"] in mv.FINISHED
                  else "already trained; the next stages continue it (--force retrains)")
        return StageResult("train", version, decided["status"], detail)
    try:
        with als_checkpoints(spark, settings):
            return _train(spark, settings, run_date, version)
    except BaseException:
        registry.release_claim(settings, version)  # nothing of a failed attempt is registered
        raise


def _train(spark: SparkSession, settings: Settings, run_date: str, version: str) -> StageResult:
    events = events_up_to(spark, settings, run_date)
    interactions, span = interactions_up_to(spark, settings, run_date, events)
    train, _ = evaluation_split(interactions, settings.evaluation)
    items, users = read_table(spark, settings, ITEMS), read_table(spark, settings, USERS)
    tuned = tune_als(train, events, settings, items, users)
    chosen = with_tuned(settings, tuned.weights, tuned.popularity_half_life_days, tuned.interaction_half_life_days,
                        tuned.max_per_category)
    if chosen.events.half_life_days != settings.events.half_life_days:  # tuning chose another decay
        interactions.unpersist()
        interactions, span = interactions_up_to(spark, chosen, run_date, events)
    keep_interactions(interactions, settings, run_date)
    log.info("fitting %s on all interactions with %s, interaction half-life %g d and merge %s", version,
             tuned.best, chosen.events.half_life_days, tuned.weights)
    outputs = build_outputs(interactions, chosen, tuned.best, items, users, end_of(run_date))
    user_factors, item_factors = outputs[USER_FACTORS], outputs[ITEM_FACTORS]
    concurrently({spec: partial(_write_version, df, spec, settings, version) for spec, df in outputs.items()},
                 settings.spark.concurrent_actions)
    log.info("wrote %s for %s", ", ".join(spec.name for spec in outputs), version)
    n_users, n_items = user_factors.count(), item_factors.count()
    registry.record_candidate(settings, registry.RegistryEntry(
        model_version=version, run_date=run_date,
        params={"als": tuned.best.model_dump(), "merge": tuned.weights.model_dump(),
                "max_per_category": tuned.max_per_category,
                "popularity_half_life_days": tuned.popularity_half_life_days, "validation": tuned.validation,
                "evaluation": settings.evaluation.model_dump(),
                "events": chosen.events.model_dump(include={"weights", "half_life_days"})},
        data_from=span["lo"], data_to=span["hi"], n_users=n_users, n_items=n_items,
        n_interactions=interactions.count(), tuning=[asdict(t) for t in tuned.trials]))
    interactions.unpersist()
    tracking.log_stage(settings, version, "train", params={"als": tuned.best.model_dump(), "run_date": run_date},
                       metrics={"n_users": n_users, "n_items": n_items}, trials=tuned.trials)
    return StageResult("train", version, mv.CANDIDATE, f"{n_users} users, {n_items} items, "
                       f"{len(tuned.trials)} tuning trials")


def with_tuned(settings: Settings, weights: MergeWeights, popularity_half_life_days: float,
               interaction_half_life_days: float | None = None, max_per_category: int | None = None) -> Settings:
    """The settings a version was trained and is served with: its tuned merge weights, popularity and
    interaction decay and category cap (None: events.half_life_days, serving.max_per_category as configured)."""
    tuned = settings.model_copy(update={
        "serving": settings.serving.model_copy(update={"merge": weights}),
        "outputs": settings.outputs.model_copy(update={"popularity_half_life_days": popularity_half_life_days})})
    tuned = tuned if max_per_category is None else capped(tuned, max_per_category)
    return tuned if interaction_half_life_days is None else decayed_with(tuned, interaction_half_life_days)


def _version_settings(settings: Settings, params: dict) -> Settings:
    """with_tuned for a registry row's params (rows from before tuned weights keep the configured ones)."""
    weights = MergeWeights(**params["merge"]) if params.get("merge") else settings.serving.merge
    return with_tuned(settings, weights, params.get("popularity_half_life_days",
                                                    settings.outputs.popularity_half_life_days),
                      params.get("events", {}).get("half_life_days"), params.get("max_per_category"))


def evaluate_stage(spark: SparkSession, settings: Settings, run_date: str) -> StageResult:
    """Score the version's served ranking, each signal alone and every baseline on the held-out test split."""
    entry = entry_for(settings, run_date, "evaluate")
    version = entry["model_version"]
    if entry["status"] in mv.FINISHED:
        return StageResult("evaluate", version, entry["status"], "already decided")
    chosen = _version_settings(settings, entry["params"])
    interactions = kept_interactions(spark, chosen, run_date)  # built again with the version's decay if gone
    profiles = read_table(spark, settings, ITEM_CONTENT).where(F.col("model_version") == version)
    with als_checkpoints(spark, settings):
        metrics = evaluate_models(interactions, chosen, AlsConfig(**entry["params"]["als"]), profiles,
                                  served=(read_table(spark, settings, ITEMS), read_table(spark, settings, USERS)))
    interactions.unpersist()
    registry.update_version(settings, version, metrics=metrics)
    tracking.log_stage(settings, version, "evaluate", metrics=metrics)
    k = settings.evaluation.k
    return StageResult("evaluate", version, entry["status"],
                       ", ".join(f"{m} NDCG@{k} {v['ndcg']:.4f}" for m, v in metrics.items()))


def run_all(spark: SparkSession, settings: Settings, run_date: str, force: bool = False) -> list[StageResult]:
    """Every stage in order, in this process: what `make train` runs."""
    from recsys.sequence.stage import sequence_stage  # it builds on this module's stages

    require_quality(spark, settings, run_date)
    return [train_stage(spark, settings, run_date, force), sequence_stage(spark, settings, run_date),
            evaluate_stage(spark, settings, run_date), gate_stage(settings, run_date),
            publish_stage(settings, run_date)]
