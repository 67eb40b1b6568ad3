"""MLflow tracking on a temporary SQLite store: runs nest version > stage > trial; disabled is a no-op;
a broken store never raises."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recsys import tracking
from recsys.config import Settings, load_settings
from recsys.reports.evaluation_report import Trial
from recsys.tracking.tracker import NoopTracker, flatten, numeric

pytestmark = pytest.mark.unit
VERSION = "2026-11-02.1"


def tracked(tmp_path: Path, uri: str | None = None, enabled: bool = True) -> Settings:
    settings = load_settings("test", environ={})
    return settings.model_copy(update={"tracking": settings.tracking.model_copy(update={
        "enabled": enabled, "uri": uri or str(tmp_path / "mlflow.db"),
        "artifact_root": str(tmp_path / "artifacts"), "experiment": "unit"})})


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Settings, object]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    settings = tracked(root)
    report = root / f"{VERSION}.html"
    report.write_text("<html>report</html>")
    tracking.log_stage(settings, VERSION, "train", params={"als": {"rank": 8, "alpha": 10.0}, "run_date": "x"},
                       metrics={"n_users": 40}, trials=[Trial(0, {"rank": 8}, 0.25, 1.5),
                                                        Trial(1, {"rank": 4}, 0.2, 1.0)])
    tracking.log_stage(settings, VERSION, "evaluate", metrics={"als": {"ndcg": 0.5}, "item_knn": {"ndcg": 0.4}})
    tracking.log_stage(settings, VERSION, "gate", tags={"status": "approved", "gate_reason": "passes"},
                       artifacts=[str(report), str(root / "missing.html")])
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("unit").experiment_id])
    return client, {(r.data.tags["recsys.level"], r.info.run_name): r for r in runs}


def test_a_version_run_holds_a_run_per_stage_and_per_trial(store):
    _, runs = store
    assert set(runs) == {("version", VERSION), ("stage", "train"), ("stage", "evaluate"), ("stage", "gate"),
                         ("trial", "train trial 0"), ("trial", "train trial 1")}
    parent = runs[("version", VERSION)].info.run_id
    assert all(runs[("stage", s)].data.tags["mlflow.parentRunId"] == parent for s in ("train", "evaluate", "gate"))
    train = runs[("stage", "train")]
    assert runs[("trial", "train trial 1")].data.tags["mlflow.parentRunId"] == train.info.run_id
    assert train.data.params == {"als.rank": "8", "als.alpha": "10.0", "run_date": "x"}
    assert train.data.metrics == {"n_users": 40.0}
    assert runs[("trial", "train trial 0")].data.metrics["score"] == 0.25
    assert runs[("trial", "train trial 0")].data.params == {"rank": "8"}
    assert runs[("stage", "evaluate")].data.metrics == {"als.ndcg": 0.5, "item_knn.ndcg": 0.4}


def test_the_gate_tags_the_version_and_keeps_the_report(store):
    client, runs = store
    assert runs[("version", VERSION)].data.tags["status"] == "approved"
    gate = runs[("stage", "gate")]
    assert gate.data.tags["gate_reason"] == "passes"
    assert [a.path for a in client.list_artifacts(gate.info.run_id)] == [f"{VERSION}.html"]  # missing one skipped


def test_disabled_tracking_records_nothing(tmp_path):
    settings = tracked(tmp_path, enabled=False)
    assert isinstance(tracking.tracker(settings), NoopTracker)
    assert tracking.log_stage(settings, VERSION, "train", params={"a": 1}) is None
    assert list(tmp_path.iterdir()) == []


def test_a_broken_store_warns_and_never_raises(tmp_path, caplog):
    broken = tmp_path / "broken.db"
    broken.write_text("this is not a SQLite database")
    with caplog.at_level(logging.WARNING, logger="recsys.tracking.tracker"):
        assert tracking.log_stage(tracked(tmp_path, uri=str(broken)), VERSION, "train", params={"a": 1}) is None
    assert f"tracking train of {VERSION}" in caplog.text


def test_nested_values_flatten_and_only_numbers_are_metrics():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": 2}) == {"a.b": 1, "a.c.d": "x", "e": 2}
    assert flatten({"test": {"merged+sequence": {"hr": 0.5}}}) == {"test.merged_sequence.hr": 0.5}  # MLflow refuses '+'
    assert numeric({"a": 1, "b": "x", "c": True, "d": float("nan"), "e": {"f": 0.5}}) == {"a": 1.0, "e.f": 0.5}
