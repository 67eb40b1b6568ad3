"""The batch pipeline as stages: train and tune -> evaluate -> gate (+ report) -> publish.

Each stage is one function (one Airflow task, one spark-submit) that finds its model version in the
registry by run date, so stages can run in separate processes, be retried, and be re-run for the
same date without adding anything: a decided run date is left alone unless retraining is forced.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch import registry
from recsys.batch.als import factor_frames, fit_als
from recsys.batch.content import item_profiles
from recsys.batch.data_quality import require_quality
from recsys.batch.evaluation import evaluate_models
from recsys.batch.gate import decide
from recsys.batch.interactions import build_interactions, drop_erased
from recsys.batch.item_knn import item_similarities
from recsys.batch.popular import popular_items
from recsys.batch.splits import evaluation_split
from recsys.batch.tuning import tune_als
from recsys.config import AlsConfig, Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import (
    EVENTS_BRONZE,
    ITEM_CONTENT,
    ITEM_FACTORS,
    ITEMS,
    POPULAR_ITEMS,
    SIMILAR_ITEMS,
    USER_ERASURES,
    USER_FACTORS,
    USERS,
    TableSpec,
)
from recsys.reports.evaluation_report import Trial, render_report, write_report
from recsys.spark.delta import conform, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    stage: str
    model_version: str
    status: str
    detail: str


def interactions_up_to(spark: SparkSession, settings: Settings, run_date: str) -> tuple[DataFrame, dict]:
    """The persisted interactions of every event up to run_date, and the events' time range."""
    events = read_table(spark, settings, EVENTS_BRONZE).where(F.col("event_date") <= F.lit(run_date).cast("date"))
    events = _without_erased(spark, settings, events)
    as_of = F.lit(f"{run_date} 23:59:59").cast("timestamp")
    interactions = build_interactions(events, settings.events, as_of).persist()
    if interactions.isEmpty():
        raise ValueError(f"no interactions in {settings.table_path(EVENTS_BRONZE.name)} up to {run_date}")
    span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first().asDict()
    return interactions, span


def _without_erased(spark: SparkSession, settings: Settings, events: DataFrame) -> DataFrame:
    """Drop the events of erased users (recorded by DELETE /v1/users/<id>) once that table exists."""
    path = settings.table_path(USER_ERASURES.name)
    if not DeltaTable.isDeltaTable(spark, path):
        return events
    return drop_erased(events, spark.read.format("delta").load(path))


def _write_version(df: DataFrame, spec: TableSpec, settings: Settings, version: str) -> None:
    """Overwrite just this version's partition: a retried write replaces, never adds."""
    out = conform(df.withColumn("model_version", F.lit(version)), df.sparkSession, spec)
    (out.write.format("delta").mode("overwrite").option("replaceWhere", f"model_version = '{version}'")
     .partitionBy("model_version").save(settings.table_path(spec.name)))


def _version_to_train(spark: SparkSession, settings: Settings, run_date: str, force: bool) -> tuple[str, dict | None]:
    latest = registry.latest_for_run_date(spark, settings, run_date)
    if latest is None:
        return mv.version_name(run_date), None
    if latest["status"] in mv.FINISHED:
        return (mv.version_name(run_date, mv.sequence_of(latest["model_version"]) + 1), None) if force \
            else (latest["model_version"], latest)
    return latest["model_version"], None  # an unfinished attempt: redo it in place


def train_stage(spark: SparkSession, settings: Settings, run_date: str, force: bool = False) -> StageResult:
    """Tune ALS on the train split, fit it on all interactions and write every per-version output."""
    version, decided = _version_to_train(spark, settings, run_date, force)
    if decided is not None:
        return StageResult("train", version, decided["status"], "run date already decided; --force retrains")
    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("als"))
    interactions, span = interactions_up_to(spark, settings, run_date)
    train, _ = evaluation_split(interactions, settings.evaluation)
    tuned = tune_als(train, settings)
    log.info("fitting %s on all interactions with %s", version, tuned.best)
    user_factors, item_factors = factor_frames(fit_als(interactions, tuned.best))
    popularity = interactions.groupBy("item_id").agg(F.countDistinct("user_id").cast("double").alias("popularity"))
    similar = item_similarities(interactions, settings.outputs.similar_items).select(
        "item_id", F.col("other_id").alias("similar_id"), F.col("sim").alias("score"), "rank")
    users = read_table(spark, settings, USERS)
    outputs = {
        USER_FACTORS: user_factors,
        ITEM_FACTORS: item_factors.join(popularity, "item_id"),
        SIMILAR_ITEMS: similar,
        POPULAR_ITEMS: popular_items(interactions, users, settings.outputs),
        ITEM_CONTENT: item_profiles(read_table(spark, settings, ITEMS), settings.content),
    }
    for spec, df in outputs.items():
        _write_version(df, spec, settings, version)
        log.info("wrote %s for %s", spec.name, version)
    n_users, n_items = user_factors.count(), item_factors.count()
    registry.record_candidate(spark, settings, registry.RegistryEntry(
        model_version=version, run_date=run_date,
        params={"als": tuned.best.model_dump(), "evaluation": settings.evaluation.model_dump(),
                "events": settings.events.model_dump(include={"weights", "half_life_days"})},
        data_from=span["lo"], data_to=span["hi"], n_users=n_users, n_items=n_items,
        n_interactions=interactions.count(), tuning=[asdict(t) for t in tuned.trials]))
    interactions.unpersist()
    return StageResult("train", version, mv.CANDIDATE, f"{n_users} users, {n_items} items, "
                       f"{len(tuned.trials)} tuning trials")


def _entry_for(spark: SparkSession, settings: Settings, run_date: str, stage: str) -> dict:
    entry = registry.latest_for_run_date(spark, settings, run_date)
    if entry is None:
        raise LookupError(f"{stage}: no model version for run date {run_date}; run the train stage first")
    return entry


def evaluate_stage(spark: SparkSession, settings: Settings, run_date: str) -> StageResult:
    """Score the version's ALS parameters and every baseline on the held-out test split."""
    entry = _entry_for(spark, settings, run_date, "evaluate")
    version = entry["model_version"]
    if entry["status"] in mv.FINISHED:
        return StageResult("evaluate", version, entry["status"], "already decided")
    interactions, _ = interactions_up_to(spark, settings, run_date)
    profiles = read_table(spark, settings, ITEM_CONTENT).where(F.col("model_version") == version)
    metrics = evaluate_models(interactions, settings, AlsConfig(**entry["params"]["als"]), profiles)
    interactions.unpersist()
    registry.update_version(spark, settings, version, metrics=metrics)
    k = settings.evaluation.k
    return StageResult("evaluate", version, entry["status"],
                       ", ".join(f"{m} NDCG@{k} {v['ndcg']:.4f}" for m, v in metrics.items()))


def _current_ndcg(spark: SparkSession, settings: Settings, excluding: str) -> float | None:
    rows = [r for r in registry.list_versions(spark, settings) if r["model_version"] != excluding]
    current = mv.current_version(rows)
    metrics = next((r["metrics"] for r in rows if r["model_version"] == current), None) or {}
    return metrics.get("als", {}).get("ndcg")


def gate_stage(spark: SparkSession, settings: Settings, run_date: str) -> StageResult:
    """Approve or reject the version against the floor and the current model; write its HTML report."""
    entry = _entry_for(spark, settings, run_date, "gate")
    version = entry["model_version"]
    if entry["status"] in mv.FINISHED:
        return StageResult("gate", version, entry["status"], entry["gate_reason"] or "already decided")
    if not entry["metrics"]:
        raise LookupError(f"gate: {version} has no metrics; run the evaluate stage first")
    decision = decide(entry["metrics"]["als"]["ndcg"], _current_ndcg(spark, settings, version), settings.gate)
    status = mv.APPROVED if decision.publish else mv.REJECTED
    report_uri = settings.report_path(version)
    write_report(render_report(version, entry["metrics"], [Trial(**t) for t in entry["tuning"] or []], {
        "status": status, "gate": decision.reason, "run date": run_date,
        "data": f"{entry['data_from']} .. {entry['data_to']}",
        "size": f"{entry['n_users']} users, {entry['n_items']} items, {entry['n_interactions']} interactions",
        "ALS parameters": ", ".join(f"{k}={v}" for k, v in entry["params"]["als"].items()),
    }, settings.evaluation.k), report_uri)
    registry.update_version(spark, settings, version, status=status, gate_reason=decision.reason,
                            report_uri=report_uri)
    log.info("gate %s %s: %s (report %s)", version, status, decision.reason, report_uri)
    return StageResult("gate", version, status, decision.reason)


def publish_stage(spark: SparkSession, settings: Settings, run_date: str) -> StageResult:
    """Make an approved version current (one registry commit); a rejected one leaves the current model."""
    entry = _entry_for(spark, settings, run_date, "publish")
    version, status = entry["model_version"], entry["status"]
    if status == mv.APPROVED:
        registry.set_status(spark, settings, version, mv.PUBLISHED)
        log.info("published %s", version)
        return StageResult("publish", version, mv.PUBLISHED, entry["gate_reason"] or "")
    if status in mv.FINISHED:
        return StageResult("publish", version, status, f"nothing to publish: {entry['gate_reason']}")
    raise LookupError(f"publish: {version} is still a {status}; run the gate stage first")


def run_all(spark: SparkSession, settings: Settings, run_date: str, force: bool = False) -> list[StageResult]:
    """Every stage in order, in this process: what `make train` runs."""
    require_quality(spark, settings, run_date)
    return [train_stage(spark, settings, run_date, force), evaluate_stage(spark, settings, run_date),
            gate_stage(spark, settings, run_date), publish_stage(spark, settings, run_date)]
