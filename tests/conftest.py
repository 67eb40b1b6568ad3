"""Shared fixtures: one SparkSession per run, a private Delta root, topic and Redis namespace."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from recsys.config import Settings, load_settings

os.environ.setdefault("RECSYS_ENV", "test")


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Settings:
    """Test settings with this run's own Delta root, checkpoints, Kafka topic and Redis key prefix."""
    root: Path = tmp_path_factory.mktemp("lake")
    environ = dict(os.environ)
    environ.update({
        "RECSYS__STORAGE__DELTA_ROOT": str(root / "delta"),
        "RECSYS__STORAGE__CHECKPOINT_ROOT": str(root / "checkpoints"),
        "RECSYS__STORAGE__REPORTS_ROOT": str(root / "reports"),
        "RECSYS__KAFKA__EVENTS_TOPIC": f"test-events-{run_id}",
        "RECSYS__REDIS__KEY_PREFIX": f"recsys-test-{run_id}:v1",
    })
    return load_settings("test", environ=environ)


@pytest.fixture(scope="session")
def spark(settings: Settings):
    from recsys.spark.session import get_spark

    session = get_spark(settings, "tests")
    yield session
    session.stop()


@pytest.fixture
def own_lake(settings: Settings, tmp_path: Path) -> Settings:
    """A Delta root and checkpoints of this test's own: what it writes never reaches the batch-layer tests'
    shared lake (whose counts they check)."""
    return settings.model_copy(update={"storage": settings.storage.model_copy(update={
        "delta_root": str(tmp_path / "delta"), "checkpoint_root": str(tmp_path / "checkpoints")})})
