"""The tracker: a parent MLflow run per model version, a nested run per stage and per tuning trial."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from recsys.config import Settings, TrackingConfig

log = logging.getLogger(__name__)

VERSION_TAG = "model_version"
STAGE_TAG = "stage"
LEVEL_TAG = "recsys.level"         # "version", "stage" or "trial": how runs nest
MAX_PARAM_CHARS = 6000             # MLflow's limit on a parameter value


class Tracker(Protocol):
    def log_stage(self, version: str, stage: str, *, params: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                  artifacts: Iterable[str] = (), trials: Iterable[Any] = ()) -> str | None:
        """Record one stage of a model version; returns the stage run's id (None when not tracking)."""


class NoopTracker:
    """Tracking disabled: accepts every call, records nothing."""

    def log_stage(self, version: str, stage: str, **_: Any) -> str | None:
        return None


_MLFLOW_UNSAFE = re.compile(r"[^\w\-. :/]")  # MLflow: alphanumerics, _ - . space : /


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"als": {"ndcg": 0.1}} -> {"als.ndcg": 0.1}: MLflow keys are flat, and hold only the characters MLflow
    accepts (a row named "merged+sequence" would make it refuse the whole stage's record)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{_MLFLOW_UNSAFE.sub('_', str(key))}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def numeric(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in flatten(values).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v}


def store_uri(cfg: TrackingConfig, settings: Settings) -> str:
    """The configured store as an MLflow URI: *.db paths are SQLite files, other paths file stores."""
    if "://" in cfg.uri or cfg.uri.startswith(("sqlite:", "file:", "databricks")):
        return cfg.uri
    path = Path(settings.path(cfg.uri))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".db":
        return f"sqlite:///{path}"
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores behind this flag
    return path.as_uri()


def artifact_uri(cfg: TrackingConfig, settings: Settings) -> str | None:
    """Where a new experiment keeps artifacts; None (empty in config) leaves it to the tracking server."""
    if not cfg.artifact_root:
        return None
    if "://" in cfg.artifact_root:
        return cfg.artifact_root
    path = Path(settings.path(cfg.artifact_root))
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


class MlflowTracker:
    """Writes through MlflowClient (no global active run), so stages in one process cannot mix runs."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | None) -> None:
        from mlflow.tracking import MlflowClient  # heavy import: only when tracking is on

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (found.experiment_id if found is not None
                              else self.client.create_experiment(experiment, artifact_location=artifact_root))

    def version_run(self, version: str) -> str:
        """The version's parent run, created by whichever stage records it first."""
        runs = self.client.search_runs([self.experiment_id], max_results=1,
                                       filter_string=f"tags.`{VERSION_TAG}` = '{version}' "
                                                     f"and tags.`{LEVEL_TAG}` = 'version'")
        if runs:
            return runs[0].info.run_id
        run = self.client.create_run(self.experiment_id, run_name=version,
                                     tags={VERSION_TAG: version, LEVEL_TAG: "version"})
        return run.info.run_id

    def _child(self, parent: str, name: str, level: str, version: str, params: Mapping[str, Any],
               metrics: Mapping[str, float], tags: Mapping[str, Any]) -> str:
        from mlflow.entities import Metric, Param

        run = self.client.create_run(self.experiment_id, run_name=name, tags={
            "mlflow.parentRunId": parent, VERSION_TAG: version, LEVEL_TAG: level,
            **{k: str(v) for k, v in tags.items()}})
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in flatten(params).items()])
        return run_id

    def log_stage(self, version: str, stage: str, *, params: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                  artifacts: Iterable[str] = (), trials: Iterable[Any] = ()) -> str | None:
        parent = self.version_run(version)
        run_id = self._child(parent, stage, "stage", version, params or {}, numeric(metrics or {}),
                             {STAGE_TAG: stage, **(tags or {})})
        for trial in trials:
            fields = dataclasses.asdict(trial) if dataclasses.is_dataclass(trial) else dict(trial)
            number = fields.get("number", "")
            trial_id = self._child(run_id, f"{stage} trial {number}", "trial", version,
                                   fields.pop("params", {}) or {}, numeric(fields), {STAGE_TAG: stage})
            self.client.set_terminated(trial_id)
        for path in artifacts:
            if Path(path).is_file():
                self.client.log_artifact(run_id, path)
        self.client.set_terminated(run_id)
        for key, value in (tags or {}).items():  # the version's latest status and reason, on the parent too
            self.client.set_tag(parent, key, str(value))
        self.client.set_terminated(parent)  # ended after each stage; the next stage's run still nests under it
        return run_id


@lru_cache(maxsize=4)
def _mlflow_tracker(uri: str, experiment: str, artifact_root: str | None) -> MlflowTracker:
    return MlflowTracker(uri, experiment, artifact_root)


def tracker(settings: Settings) -> Tracker:
    """The configured tracker: MLflow, or a no-op when tracking is disabled."""
    cfg = settings.tracking
    if not cfg.enabled:
        return NoopTracker()
    return _mlflow_tracker(store_uri(cfg, settings), cfg.experiment, artifact_uri(cfg, settings))


def log_stage(settings: Settings, version: str, stage: str, **record: Any) -> str | None:
    """Record a stage of a model version (see Tracker.log_stage); a failing store is logged, not raised."""
    try:
        return tracker(settings).log_stage(version, stage, **record)
    except Exception as exc:  # tracking must never stop a model from being trained or published
        log.warning("tracking %s of %s in %s failed: %s", stage, version, settings.tracking.uri, exc)
        return None
