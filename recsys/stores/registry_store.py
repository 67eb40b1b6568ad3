"""Activating a model version (roll back or forward) without Spark, with delta-rs: the one activation,
called by `make rollback` (spark_jobs/activate_model.py) and POST /v1/admin/models/<version>/activate.

The version's row gets status `published` and a new `published_at`, in one Delta commit (an UPDATE of
that row), so readers see the old or the new current version, never both. `published_at` is the current
time, or just after the latest `published_at` in the registry when a clock is behind, so the activated
version is current by the contract's rule (recsys.contracts.model_version.current_version) once the
commit lands.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.contracts.tables import ITEM_FACTORS, MODEL_REGISTRY
from recsys.stores.delta_rs import open_table, with_commit_retries
from recsys.stores.model_store import query_delta

_TICK = timedelta(microseconds=1)  # Delta timestamps are microseconds: the smallest later published_at
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownVersionError(LookupError):
    """The version cannot be activated: not registered, rejected by the gate, or without factors."""


class RejectedVersionError(UnknownVersionError):
    """The version exists but has not passed the gate (rejected, a candidate, or still training): never
    activated, by anyone."""


def activate_version(settings: Settings, version: str) -> tuple[str | None, str]:
    """Make `version` the current model; returns (previous current version, `version`).

    Raises UnknownVersionError when the version is not in the registry or has no item factors (serving
    could not load it), and its subclass RejectedVersionError when it is not approved or published
    (mv.ACTIVATABLE). A commit conflict is re-run on the new registry.
    """
    if not isinstance(version, str) or not re.fullmatch(mv.VERSION_PATTERN, version):
        raise UnknownVersionError(f"model version {version!r} is not registered")

    def activate() -> tuple[str | None, str]:
        registry = open_table(settings, MODEL_REGISTRY)
        rows = [] if registry is None else query_delta(registry, "SELECT * FROM t").to_pylist()
        _check_activatable(settings, version, rows)
        previous = mv.current_version(rows)
        stamps = [r["published_at"] for r in rows if r.get("published_at") is not None]
        published_at = max([datetime.now(UTC), *(s + _TICK for s in stamps)])
        registry.update(updates={"status": f"'{mv.PUBLISHED}'", "published_at": str(_micros(published_at))},
                        predicate=f"model_version = '{version}'")
        return previous, version

    return with_commit_retries(settings.delta_rs, f"activate model version {version}", activate)


def not_activatable(version: str, status: str, gate_reason: str | None) -> str:
    """Why a version that did not pass the gate cannot be made current (both activation paths say it)."""
    if status == mv.REJECTED:
        return f"model version {version!r} was rejected by the gate and cannot be activated: {gate_reason}"
    return (f"model version {version!r} is {status}, not approved or published: only a version that passed "
            "the gate can be activated")


def _micros(when: datetime) -> int:
    """Exact epoch microseconds: delta-rs' own datetime conversion (new_values) goes through a float and
    can lose the last microsecond, which is the one that makes the activated version current."""
    return (when - _EPOCH) // _TICK


def _check_activatable(settings: Settings, version: str, rows: list[dict]) -> None:
    row = next((r for r in rows if r["model_version"] == version), None)
    if row is None:
        raise UnknownVersionError(f"model version {version!r} is not registered")
    if row["status"] not in mv.ACTIVATABLE:
        raise RejectedVersionError(not_activatable(version, row["status"], row.get("gate_reason")))
    factors = open_table(settings, ITEM_FACTORS)
    count = 0 if factors is None else query_delta(
        factors, f"SELECT COUNT(*) AS n FROM t WHERE model_version = '{version}'").column("n")[0].as_py()
    if not count:
        raise UnknownVersionError(f"model version {version!r} has no item factors")
