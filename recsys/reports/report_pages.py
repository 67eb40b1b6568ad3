"""The registry's model versions as the report pages show them: metrics, each version's HTML report, and a
chart of the current version against its baselines and the versions before it (GET /reports).

The report and the chart come from recsys.reports.evaluation_report, which needs matplotlib: it is imported on first
use, so an API worker that never serves a report page does not pay for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recsys.config import Settings
from recsys.contracts import model_version as mv

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class VersionSummary:
    """One registry row: status, sizes, gate decision and the evaluation (model -> metric -> value)."""

    version: str
    status: str
    current: bool
    run_date: str | None = None
    created_at: datetime | None = None
    published_at: datetime | None = None
    gate_reason: str | None = None
    report_uri: str | None = None
    n_users: int | None = None
    n_items: int | None = None
    n_interactions: int | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: dict[str, float] = field(default_factory=dict)  # the published ranking's metrics (report.chosen_model)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # the other models'


def _metrics(raw: object) -> dict[str, dict[str, float]]:
    """The registry's metrics JSON; anything that is not model -> metric -> number is left out."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else raw
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(model): {str(k): float(v) for k, v in values.items()
                         if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
            for model, values in parsed.items() if isinstance(values, dict)}


def _summary(row: dict, current: str | None, chosen_model: str) -> VersionSummary:
    metrics = _metrics(row.get("metrics"))
    return VersionSummary(
        version=row["model_version"], status=row.get("status") or "", current=row["model_version"] == current,
        run_date=row.get("run_date"), created_at=row.get("created_at"), published_at=row.get("published_at"),
        gate_reason=row.get("gate_reason"), report_uri=row.get("report_uri"), n_users=row.get("n_users"),
        n_items=row.get("n_items"), n_interactions=row.get("n_interactions"), metrics=metrics,
        chosen=metrics.get(chosen_model, {}),
        baselines={model: values for model, values in metrics.items() if model != chosen_model})


def version_summaries(rows: list[dict]) -> list[VersionSummary]:
    """The registry rows (DeltaModelStore.registry()), newest first."""
    from recsys.reports.evaluation_report import chosen_model

    current = mv.current_version(rows)
    summaries = [_summary(row, current, chosen_model(_metrics(row.get("metrics")))) for row in rows]
    return sorted(summaries, key=lambda s: (s.created_at or _OLDEST, mv.sequence_of(s.version), s.version),
                  reverse=True)


def find_version(summaries: list[VersionSummary], version: str) -> VersionSummary | None:
    return next((s for s in summaries if s.version == version), None)


def metric_columns(summaries: list[VersionSummary], k: int) -> list[tuple[str, str]]:
    """(metric key, label) of the chosen model's metrics found in any version, in the report's order."""
    from recsys.reports.evaluation_report import METRIC_LABELS

    seen = {key for s in summaries for key in s.chosen}
    keys = [key for key in METRIC_LABELS if key in seen] + sorted(seen - METRIC_LABELS.keys())
    return [(key, METRIC_LABELS.get(key, key).format(k=k)) for key in keys]


def comparison_chart(summaries: list[VersionSummary], k: int, versions: int) -> str | None:
    """An <img> of the current version (else the newest evaluated one) against its baselines and up to
    `versions` - 1 evaluated versions before it; None when no version has metrics."""
    from recsys.reports.evaluation_report import comparison_chart as draw

    evaluated = [s for s in summaries if s.chosen]
    focus = next((s for s in evaluated if s.current), evaluated[0] if evaluated else None)
    if focus is None:
        return None
    earlier = [(s.version, s.chosen) for s in evaluated[evaluated.index(focus) + 1:]]
    return draw(focus.version, focus.metrics, earlier[:versions - 1], k)


def report_page(settings: Settings, summary: VersionSummary) -> str | None:
    """The HTML report the gate wrote for the version (its report_uri, else where it would be written)."""
    from recsys.reports.evaluation_report import read_report

    return read_report(summary.report_uri or settings.report_path(summary.version))
