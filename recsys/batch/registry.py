"""The model registry table: register candidates, publish (atomically) and list versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import MODEL_REGISTRY
from recsys.spark.delta import conform, ensure_table


@dataclass(frozen=True)
class RegistryEntry:
    model_version: str
    run_date: str
    params: dict
    metrics: dict
    data_from: datetime | None
    data_to: datetime | None
    n_users: int
    n_items: int
    n_interactions: int


def register_candidate(spark: SparkSession, settings: Settings, entry: RegistryEntry) -> None:
    ensure_table(spark, settings, MODEL_REGISTRY)
    row = {
        "model_version": entry.model_version, "created_at": datetime.now(UTC), "run_date": entry.run_date,
        "status": mv.CANDIDATE, "published_at": None, "params": json.dumps(entry.params, sort_keys=True),
        "metrics": json.dumps(entry.metrics, sort_keys=True), "data_from": entry.data_from,
        "data_to": entry.data_to, "n_users": entry.n_users, "n_items": entry.n_items,
        "n_interactions": entry.n_interactions,
    }
    df = conform(spark.createDataFrame([row], MODEL_REGISTRY.ddl), spark, MODEL_REGISTRY)
    df.write.format("delta").mode("append").save(settings.table_path(MODEL_REGISTRY.name))


def set_status(spark: SparkSession, settings: Settings, version: str, status: str) -> None:
    """One Delta commit: readers see the registry before or after it, never in between."""
    if status not in mv.STATUSES:
        raise ValueError(f"unknown status {status!r}")
    table = ensure_table(spark, settings, MODEL_REGISTRY)
    if table.toDF().where(F.col("model_version") == version).limit(1).count() == 0:
        raise LookupError(f"model version {version!r} is not in the registry")
    values = {"status": F.lit(status)}
    if status == mv.PUBLISHED:
        values["published_at"] = F.current_timestamp()
    table.update(F.col("model_version") == version, values)


def list_versions(spark: SparkSession, settings: Settings) -> list[dict]:
    rows = ensure_table(spark, settings, MODEL_REGISTRY).toDF().orderBy("created_at").collect()
    return [r.asDict() for r in rows]


def current_version(spark: SparkSession, settings: Settings) -> str | None:
    return mv.current_version(list_versions(spark, settings))


def activate(spark: SparkSession, settings: Settings, version: str) -> None:
    """Make an earlier (or rejected) version current again: the rollback command."""
    set_status(spark, settings, version, mv.PUBLISHED)
