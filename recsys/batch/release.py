"""The gate and publish stages: registry rows and a report, no Spark session. This module imports nothing of
Spark or of training, so their spark-submit starts the Python side a second sooner (recsys.batch.stage_runner)."""

from __future__ import annotations

import logging

from recsys import tracking
from recsys.batch import registry
from recsys.batch.gate import decide
from recsys.batch.served_evaluation import SERVED, best_baseline
from recsys.batch.stage_result import StageResult, entry_for
from recsys.config import Settings
from recsys.contracts import model_version as mv
from recsys.reports.evaluation_report import Trial, render_report, write_report
from recsys.sequence.report import sequence_rows, sequence_summary
from recsys.stores.registry_store import activate_version

log = logging.getLogger(__name__)


def _current_row(rows: list[dict]) -> dict | None:
    """The registry row of the version that rows make current, or None."""
    current = mv.current_version(rows)
    return next((r for r in rows if r["model_version"] == current), None)


def _current_ndcg(settings: Settings, excluding: str) -> float | None:
    """The current version's served NDCG on its validation window (its ALS NDCG for older rows)."""
    row = _current_row([r for r in registry.list_versions(settings) if r["model_version"] != excluding])
    if row is None:
        return None
    validation = (row["params"] or {}).get("validation") or {}
    return validation.get(SERVED, {}).get("ndcg", (row["metrics"] or {}).get("als", {}).get("ndcg"))


def gate_stage(settings: Settings, run_date: str) -> StageResult:
    """Approve or reject the version against the floor and the current model; write its HTML report.
    Only registry rows and a report: no Spark session."""
    entry = entry_for(settings, run_date, "gate")
    version = entry["model_version"]
    if entry["status"] in mv.FINISHED:
        return StageResult("gate", version, entry["status"], entry["gate_reason"] or "already decided")
    if not entry["metrics"]:
        raise LookupError(f"gate: {version} has no metrics; run the evaluate stage first")
    validation = entry["params"].get("validation") or {}
    if SERVED not in validation:
        raise LookupError(f"gate: {version} has no validation figures; run the train stage again")
    baseline = best_baseline(validation)
    decision = decide(validation[SERVED]["ndcg"], _current_ndcg(settings, version), settings.gate,
                      baseline if baseline[0] != "none" else None)
    status = mv.APPROVED if decision.publish else mv.REJECTED
    report_uri = settings.report_path(version)
    shown = {**entry["metrics"], **{f"validation {name}": m for name, m in validation.items()},
             **sequence_rows(entry["params"])}
    write_report(render_report(version, shown, [Trial(**t) for t in entry["tuning"] or []], {
        "status": status, "gate": decision.reason, "run date": run_date,
        "data": f"{entry['data_from']} .. {entry['data_to']}",
        "size": f"{entry['n_users']} users, {entry['n_items']} items, {entry['n_interactions']} interactions",
        "ALS parameters": ", ".join(f"{k}={v}" for k, v in entry["params"]["als"].items()),
        "merge weights": ", ".join(f"{k}={v}" for k, v in (entry["params"].get("merge") or {}).items()),
        "popularity half-life (days)": str(entry["params"].get("popularity_half_life_days")),
        "interaction half-life (days)": str(entry["params"].get("events", {}).get("half_life_days")),
        "category cap": str(entry["params"].get("max_per_category", settings.serving.max_per_category)),
        "best single baseline (validation)": f"{baseline[0]} {baseline[1]:.4f}",
        "sequence model": sequence_summary(entry["params"]),
    }, settings.evaluation.k), report_uri)
    registry.update_version(settings, version, status=status, gate_reason=decision.reason,
                            report_uri=report_uri)
    tracking.log_stage(settings, version, "gate", tags={"status": status, "gate_reason": decision.reason},
                       artifacts=[report_uri])
    log.info("gate %s %s: %s (report %s)", version, status, decision.reason, report_uri)
    return StageResult("gate", version, status, decision.reason)


def publish_stage(settings: Settings, run_date: str) -> StageResult:
    """Make an approved version current (one registry commit, the one activation); a rejected one leaves the
    current model. No Spark session."""
    entry = entry_for(settings, run_date, "publish")
    version, status = entry["model_version"], entry["status"]
    newer = _newer_current(settings, run_date)
    if status == mv.APPROVED and newer is not None:
        detail = (f"not published: the current model {newer['model_version']} was trained on a later run date "
                  f"({newer['run_date']}); activate {version} explicitly (make rollback) to serve it")
        log.warning("publish %s: %s", version, detail)
        return StageResult("publish", version, mv.APPROVED, detail)
    if status == mv.APPROVED:
        activate_version(settings, version)
        tracking.log_stage(settings, version, "publish", tags={"status": mv.PUBLISHED})
        log.info("published %s", version)
        return StageResult("publish", version, mv.PUBLISHED, entry["gate_reason"] or "")
    if status in mv.FINISHED:
        return StageResult("publish", version, status, f"nothing to publish: {entry['gate_reason']}")
    raise LookupError(f"publish: {version} is still a {status}; run the gate stage first")


def _newer_current(settings: Settings, run_date: str) -> dict | None:
    """The current version's row when it was trained on a later run date than run_date (a late or re-run
    older date must not replace it), else None."""
    row = _current_row(registry.list_versions(settings))
    return row if row is not None and row["run_date"] > run_date else None
