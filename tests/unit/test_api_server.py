"""api/server.py: what the server process prepares for its workers, and the server it builds from serving.*."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from api.server import MULTIPROC_ENV, build_server, limit_malloc_arenas, prepare_environment
from recsys.config import PROJECT_ROOT, load_settings
from recsys.serving.blas_threads import BLAS_THREAD_VARIABLES

pytestmark = pytest.mark.unit


def test_prepare_environment_limits_blas_and_empties_only_the_metric_files(tmp_path):
    settings = load_settings("test", environ={"RECSYS__SERVING__BLAS_THREADS": "1"})
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "histogram_1.db").write_bytes(b"old run")
    (folder / "notes.txt").write_text("an operator's file")
    environ = {MULTIPROC_ENV: str(folder), "OMP_NUM_THREADS": "4"}

    assert prepare_environment(settings, environ) == folder

    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert environ["OMP_NUM_THREADS"] == "4"  # the operator's value wins
    assert {environ[name] for name in BLAS_THREAD_VARIABLES if name != "OMP_NUM_THREADS"} == {"1"}


def test_prepare_environment_creates_serving_metrics_dir_when_unset(tmp_path):
    settings = load_settings("test", environ={"RECSYS__SERVING__METRICS_DIR": str(tmp_path / "m")})
    environ: dict[str, str] = {}
    assert prepare_environment(settings, environ) == tmp_path / "m"
    assert environ[MULTIPROC_ENV] == str(tmp_path / "m") and (tmp_path / "m").is_dir()


def test_server_takes_bind_workers_threads_and_access_log_from_serving():
    settings = load_settings("test", environ={"RECSYS__SERVING__PORT": "8123", "RECSYS__SERVING__WORKERS": "3",
                                              "RECSYS__SERVING__THREADS": "6", "RECSYS__SERVING__INGEST_SLOTS": "2",
                                              "RECSYS__SERVING__INGEST_QUEUE": "2",
                                              "RECSYS__SERVING__ACCESS_LOG": "false"})
    server = build_server(settings)
    assert (server.bind_addr, server.bind_port) == (settings.serving.host, 8123)
    assert (server.workers, server.blocking_threads, server.log_access) == (3, 6, False)
    assert server.respawn_failed_workers is True
    assert server.workers_kill_timeout > settings.experiments.recorder.shutdown_flush_s


def test_a_server_without_keys_stops_before_any_worker_with_one_clear_error(tmp_path):
    env = {**os.environ, "RECSYS_ENV": "test", "RECSYS__AUTH__OPEN": "false", "RECSYS__SERVING__PORT": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for name in [name for name in env if name.endswith("_KEYS")]:  # no key of any scope
        del env[name]
    done = subprocess.run([sys.executable, "-m", "api.server"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("api.server: no API keys are set") and "Traceback" not in done.stderr


def test_malloc_arenas_are_limited_unless_an_operator_set_them_or_asked_for_none():
    assert not limit_malloc_arenas(0, {})
    assert not limit_malloc_arenas(2, {"MALLOC_ARENA_MAX": "4"})
    assert limit_malloc_arenas(2, {}) is (platform.libc_ver()[0] == "glibc")
