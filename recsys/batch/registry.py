"""The model registry table: record versions, move them through their statuses, list them.

Making a registered version current again (rollback) is recsys.stores.registry_store.activate_version,
the one activation that `make rollback` and the admin endpoint share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from delta import exceptions as delta_exceptions
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import MODEL_REGISTRY
from recsys.spark.delta import conform, ensure_table
from recsys.stores.delta_rs import open_table, with_commit_retries
from recsys.stores.model_store import DeltaModelStore

JSON_COLUMNS = ("params", "metrics", "tuning")


@dataclass(frozen=True)
class RegistryEntry:
    model_version: str
    run_date: str
    params: dict
    data_from: datetime | None
    data_to: datetime | None
    n_users: int
    n_items: int
    n_interactions: int
    tuning: list[dict] = field(default_factory=list)


# Delta's optimistic-concurrency failures: another writer committed first; a claim looks again.
_CONCURRENT = tuple(getattr(delta_exceptions, name) for name in (
    "ConcurrentAppendException", "ConcurrentTransactionException", "ConcurrentWriteException",
    "ConcurrentDeleteReadException", "MetadataChangedException", "ProtocolChangedException",
    "DeltaConcurrentModificationException"))


class RunClaimedError(RuntimeError):
    """Another attempt is training this run date (its claim is younger than batch.claim_ttl_s)."""


def claim_version(spark: SparkSession, settings: Settings, run_date: str, force: bool = False) -> str:
    """Claim the next version of run_date for this training attempt: its own `<run_date>.<n>`, so two runs
    of one date never overwrite each other's partitions or mix factors of different fits.

    The claim is a registry row in status `training`, inserted by a MERGE that inserts only when the
    version is free; Delta's optimistic concurrency makes two simultaneous claims conflict, and the loser
    looks again. While another attempt's claim is younger than batch.claim_ttl_s this raises
    RunClaimedError (unless force: an operator who knows that run died). Older unfinished attempts of the
    date are marked rejected (superseded), so nothing publishes them.
    """
    for _ in range(settings.batch.claim_attempts):
        try:
            table = ensure_table(spark, settings, MODEL_REGISTRY)  # two first runs may create it together
        except _CONCURRENT:
            continue
        rows = [r for r in list_versions(settings) if r["run_date"] == run_date]
        now = datetime.now(UTC)
        live = [r for r in rows if r["status"] == mv.TRAINING and r["created_at"] is not None
                and (now - _aware(r["created_at"])).total_seconds() < settings.batch.claim_ttl_s]
        if live and not force:
            holder = max(live, key=lambda r: mv.sequence_of(r["model_version"]))
            raise RunClaimedError(
                f"run date {run_date} is being trained as {holder['model_version']} (claimed at "
                f"{holder['created_at']}, batch.claim_ttl_s={settings.batch.claim_ttl_s}); if that run died, "
                "retry after the claim expires or retrain with --force")
        version = mv.version_name(run_date, max((mv.sequence_of(r["model_version"]) for r in rows), default=0) + 1)
        row = spark.createDataFrame([{"model_version": version, "created_at": now, "run_date": run_date,
                                      "status": mv.TRAINING}], "model_version STRING, created_at TIMESTAMP, "
                                                              "run_date STRING, status STRING")
        try:
            (table.alias("r").merge(row.alias("n"), "r.model_version = n.model_version")
             .whenNotMatchedInsert(values={c: F.col(f"n.{c}") for c in row.columns}).execute())
        except _CONCURRENT:
            continue  # another attempt claimed at the same moment: look again
        mine = [r for r in list_versions(settings) if r["model_version"] == version]
        if mine and mine[0]["status"] == mv.TRAINING and _aware(mine[0]["created_at"]) == _aware(now):
            unfinished = [r["model_version"] for r in rows if r["status"] in (mv.TRAINING, mv.CANDIDATE)]
            if unfinished:
                table.update(F.col("model_version").isin(unfinished),
                             {"status": F.lit(mv.REJECTED), "gate_reason": F.lit(f"superseded by {version}")})
            return version
    raise RunClaimedError(f"could not claim a version of run date {run_date} in {settings.batch.claim_attempts} "
                          "attempts: other runs keep claiming it")


def release_claim(spark: SparkSession, settings: Settings, version: str) -> None:
    """Drop a failed attempt's claim (a row still `training`), so a retry can claim the run date at once."""
    ensure_table(spark, settings, MODEL_REGISTRY).delete(
        (F.col("model_version") == version) & (F.col("status") == mv.TRAINING))


def _aware(when: datetime) -> datetime:
    """Spark returns session-local naive datetimes; compare them as UTC-aware ones."""
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def record_candidate(spark: SparkSession, settings: Settings, entry: RegistryEntry) -> None:
    """Insert or replace the version's row (its claim) as a candidate: a retried train stage leaves one row."""
    table = ensure_table(spark, settings, MODEL_REGISTRY)
    row = {
        "model_version": entry.model_version, "created_at": datetime.now(UTC), "run_date": entry.run_date,
        "status": mv.CANDIDATE, "published_at": None, "params": json.dumps(entry.params, sort_keys=True),
        "metrics": None, "data_from": entry.data_from, "data_to": entry.data_to, "n_users": entry.n_users,
        "n_items": entry.n_items, "n_interactions": entry.n_interactions,
        "tuning": json.dumps(entry.tuning), "gate_reason": None, "report_uri": None,
    }
    df = conform(spark.createDataFrame([row], MODEL_REGISTRY.ddl), spark, MODEL_REGISTRY)
    (table.alias("r").merge(df.alias("n"), "r.model_version = n.model_version")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())


def update_version(settings: Settings, version: str, **values: Any) -> None:
    """One Delta commit changing columns of one row: readers see it before or after, never in between.

    JSON columns take Python objects; status must be one of the contract's statuses other than
    `published`, which only activation sets (recsys.stores.registry_store.activate_version). A small
    commit like this needs no Spark job: it is written with delta-rs, as activation is, and re-run when a
    concurrent writer wins.
    """
    if "status" in values and values["status"] not in mv.STATUSES:
        raise ValueError(f"unknown status {values['status']!r}")
    if values.get("status") == mv.PUBLISHED:
        raise ValueError("a version is published by activate_version, which also stamps published_at")
    columns = {name: json.dumps(v, sort_keys=True) if name in JSON_COLUMNS else v for name, v in values.items()}

    def update() -> None:
        if not any(r["model_version"] == version for r in list_versions(settings)):
            raise LookupError(f"model version {version!r} is not in the registry")
        open_table(settings, MODEL_REGISTRY).update(new_values=columns, predicate=f"model_version = '{version}'")

    with_commit_retries(settings.delta_rs, f"update model version {version}", update)


def set_status(settings: Settings, version: str, status: str) -> None:
    update_version(settings, version, status=status)


def list_versions(settings: Settings) -> list[dict]:
    """Every registry row, oldest first, with the JSON columns decoded (read with delta-rs: no Spark job)."""
    rows = sorted(DeltaModelStore(settings).registry(), key=lambda r: (r["created_at"] is None, r["created_at"]))
    for entry in rows:
        for name in JSON_COLUMNS:
            entry[name] = json.loads(entry[name]) if entry[name] else None
    return rows


def get_version(settings: Settings, version: str) -> dict:
    for entry in list_versions(settings):
        if entry["model_version"] == version:
            return entry
    raise LookupError(f"model version {version!r} is not in the registry")


def latest_for_run_date(settings: Settings, run_date: str) -> dict | None:
    """The newest version trained for run_date, or None: how every stage of a run finds its version."""
    rows = [r for r in list_versions(settings) if r["run_date"] == run_date]
    return max(rows, key=lambda r: mv.sequence_of(r["model_version"])) if rows else None


def current_version(settings: Settings) -> str | None:
    return mv.current_version(list_versions(settings))
