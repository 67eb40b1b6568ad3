"""The model registry table: record versions, move them through their statuses, list them.

Making a registered version current again (rollback) is recsys.stores.registry_store.activate_version,
the one activation that `make rollback` and the admin endpoint share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake.exceptions import CommitFailedError

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import MODEL_REGISTRY
from recsys.stores import delta_rs
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


class RunClaimedError(RuntimeError):
    """Another attempt is training this run date (its claim is younger than batch.claim_ttl_s)."""


def claim_version(settings: Settings, run_date: str, force: bool = False) -> str:
    """Claim the next version of run_date for this training attempt: its own `<run_date>.<n>`, so two runs
    of one date never overwrite each other's partitions or mix factors of different fits.

    The claim is a registry row in status `training`, inserted by a MERGE that inserts only when the
    version is free; Delta's optimistic concurrency makes two simultaneous claims conflict, and the loser
    looks again. While another attempt's claim is younger than batch.claim_ttl_s this raises
    RunClaimedError (unless force: an operator who knows that run died). Older unfinished attempts of the
    date are marked rejected (superseded), so nothing publishes them. Written with delta-rs, as every other
    registry change: a claim needs no Spark job (a cold driver spent seconds on Spark's MERGE).
    """
    for _ in range(settings.batch.claim_attempts):
        try:
            table = delta_rs.ensure_table(settings, MODEL_REGISTRY)  # two first runs may create it together
        except CommitFailedError:
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
        row = _row({"model_version": version, "created_at": now, "run_date": run_date, "status": mv.TRAINING})
        try:
            (table.merge(row, "r.model_version = n.model_version", source_alias="n", target_alias="r")
             .when_not_matched_insert_all().execute())
        except CommitFailedError:
            continue  # another attempt claimed at the same moment: look again
        mine = [r for r in list_versions(settings) if r["model_version"] == version]
        if mine and mine[0]["status"] == mv.TRAINING and _aware(mine[0]["created_at"]) == now:
            unfinished = [r["model_version"] for r in rows if r["status"] in (mv.TRAINING, mv.CANDIDATE)]
            if unfinished:
                _supersede(settings, unfinished, version)
            return version
    raise RunClaimedError(f"could not claim a version of run date {run_date} in {settings.batch.claim_attempts} "
                          "attempts: other runs keep claiming it")


def _supersede(settings: Settings, versions: list[str], by: str) -> None:
    """Mark older unfinished attempts rejected, so nothing publishes them."""
    listed = ", ".join(f"'{v}'" for v in versions)
    updates = {"status": f"'{mv.REJECTED}'", "gate_reason": f"'superseded by {by}'"}
    delta_rs.with_commit_retries(settings.delta_rs, f"supersede {listed}", lambda: delta_rs.open_table(
        settings, MODEL_REGISTRY).update(predicate=f"model_version IN ({listed})", updates=updates))


def release_claim(settings: Settings, version: str) -> None:
    """Drop a failed attempt's claim (a row still `training`), so a retry can claim the run date at once."""
    delta_rs.with_commit_retries(settings.delta_rs, f"release the claim of {version}", lambda: delta_rs.ensure_table(
        settings, MODEL_REGISTRY).delete(f"model_version = '{version}' AND status = '{mv.TRAINING}'"))


def _aware(when: datetime) -> datetime:
    """Rows may come back zone-less (session-local) or in UTC; compare them as UTC-aware datetimes."""
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _row(values: dict[str, Any]) -> pa.Table:
    """One registry row in the contract's Arrow schema (the columns not given are null)."""
    schema = delta_rs.arrow_schema(MODEL_REGISTRY)
    return pa.Table.from_pylist([{name: values.get(name) for name in schema.names}], schema=schema)


def record_candidate(settings: Settings, entry: RegistryEntry) -> None:
    """Insert or replace the version's row (its claim) as a candidate: a retried train stage leaves one row."""
    row = _row({
        "model_version": entry.model_version, "created_at": datetime.now(UTC), "run_date": entry.run_date,
        "status": mv.CANDIDATE, "params": json.dumps(entry.params, sort_keys=True), "data_from": entry.data_from,
        "data_to": entry.data_to, "n_users": entry.n_users, "n_items": entry.n_items,
        "n_interactions": entry.n_interactions, "tuning": json.dumps(entry.tuning),
    })

    def merge() -> None:
        (delta_rs.ensure_table(settings, MODEL_REGISTRY)
         .merge(row, "r.model_version = n.model_version", source_alias="n", target_alias="r")
         .when_matched_update_all().when_not_matched_insert_all().execute())

    delta_rs.with_commit_retries(settings.delta_rs, f"record candidate {entry.model_version}", merge)


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
        table = delta_rs.open_table(settings, MODEL_REGISTRY)
        table.update(new_values=columns, predicate=f"model_version = '{version}'")

    delta_rs.with_commit_retries(settings.delta_rs, f"update model version {version}", update)


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
