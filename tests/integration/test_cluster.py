"""The jobs off local[*]: load, the batch stages and the stream, each a spark-submit to a standalone master.

The test starts its own master and worker (docker/local/cluster.sh, from pyspark's distribution) and stops
them whatever happens. Executors are other JVMs and Python workers in the worker's own work directory, so
this shows that --py-files and --jars reach them, that relative paths are resolved before they leave the
driver (the lake here is relative to the project root), that the executors' delta-rs reads (catalogue and
model in the speed layer) find the tables, and that their netlib loads the native BLAS.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from recsys.config import PROJECT_ROOT, Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(1800)]
CLUSTER_SH = PROJECT_ROOT / "docker" / "local" / "cluster.sh"
JOB_TIMEOUT_S = 900  # each job takes under a minute or two on a quiet 2-core box, ten times that on a busy one


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Cluster:
    env: dict[str, str]  # what every command of this test runs with: RECSYS_ENV=test + the overrides below
    settings: Settings  # the same configuration, for reading what the jobs wrote
    state_dir: Path  # the cluster's logs and the worker's work dir (one folder per application)
    master_ui: str


@pytest.fixture(scope="module")
def cluster(run_id: str) -> Iterator[Cluster]:
    """A master and one worker on free loopback ports, with a lake relative to the project root."""
    master, master_ui, worker_ui = _free_ports(3)
    rel = f".local/test/cluster-{run_id}"
    env = {
        **os.environ, "RECSYS_ENV": "test", "SPARK_LOCAL_IP": "127.0.0.1",
        "RECSYS__SERVICES__STATE_DIR": rel,
        "RECSYS__SERVICES__SPARK_MASTER_PORT": str(master),
        "RECSYS__SERVICES__SPARK_MASTER_UI_PORT": str(master_ui),
        "RECSYS__SERVICES__SPARK_WORKER_UI_PORT": str(worker_ui),
        "RECSYS__SPARK__MASTER": f"spark://127.0.0.1:{master}",
        "RECSYS__SPARK__EXTRA_CONF__spark.executor.memory": '"1g"',
        "RECSYS__STORAGE__DELTA_ROOT": f"{rel}/delta",
        "RECSYS__STORAGE__CHECKPOINT_ROOT": f"{rel}/checkpoints",
        "RECSYS__STORAGE__REPORTS_ROOT": f"{rel}/reports",
        "RECSYS__KAFKA__EVENTS_TOPIC": f"test-cluster-{run_id}",
        "RECSYS__REDIS__KEY_PREFIX": f"recsys-test-cluster-{run_id}:v1",
        # Tuning fits the same ALS again, the kNN and content baselines score the same way: not worth their minutes
        "RECSYS__TUNING__ENABLED": "false",
        "RECSYS__EVALUATION__BASELINES": "[popularity]",
        "RECSYS__GATE__MIN_NDCG": "0.0",  # the gate is tested elsewhere: publish what this tiny shop scores
        "RECSYS__GATE__BASELINE_MARGIN": "-1.0",  # untuned on 3,000 events, the blend may tie popularity
        "RECSYS__ALS__DRIVER_INTERACTIONS": "0",  # ALS in the executors' blocks (numba there, broadcasts, Arrow)
    }
    settings = load_settings("test", environ=env)
    state_dir = PROJECT_ROOT / rel
    up = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield Cluster(env, settings, state_dir / "spark-cluster", f"http://127.0.0.1:{master_ui}")
    finally:
        down = subprocess.run(["bash", str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True, timeout=120)
        client = redis.Redis.from_url(settings.redis.url)
        for key in client.scan_iter(f"{settings.redis.key_prefix}:*"):
            client.delete(key)
        client.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


def _submit(cluster: Cluster, *job: str) -> str:
    """spark-submit one job as users do (python -m recsys.spark.submit); its output (spark-submit passes the
    Python driver's stderr, and so its log, to its own stdout)."""
    done = subprocess.run([sys.executable, "-m", "recsys.spark.submit", *job], cwd=PROJECT_ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert done.returncode == 0, f"{job} failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    blas = [line for line in done.stdout.splitlines() if "recsys.spark.blas: BLAS:" in line]
    assert len(blas) == 1 and "executors=JNIBLAS/JNILAPACK (native)" in blas[0], blas or done.stdout[-3000:]
    return done.stdout


def _last_json(output: str):
    """The job's result: its last output line that is a JSON object or list."""
    return json.loads(next(line for line in reversed(output.splitlines()) if line[:1] in "{["))


def _applications(cluster: Cluster) -> list[dict]:
    with urllib.request.urlopen(f"{cluster.master_ui}/json/", timeout=10) as response:
        state = json.load(response)
    return state["completedapps"] + state["activeapps"]


def _produce(settings: Settings, events: list[dict]) -> None:
    from recsys.kafka.topics import ensure_topics

    ensure_topics(settings)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20})
    for event in events:
        producer.produce(settings.kafka.events_topic, value=json.dumps(event).encode(), key=event["user_id"].encode())
    assert producer.flush(30) == 0


def test_load_batch_and_stream_run_on_a_standalone_cluster(cluster: Cluster):
    from deltalake import DeltaTable

    from recsys.contracts import redis_keys as rk
    from recsys.contracts.redis_keys import RedisKeys
    from recsys.contracts.tables import EVENTS_BRONZE, ITEMS
    from tests.integration.conftest import stored_profile

    settings = cluster.settings
    loaded = _last_json(_submit(cluster, "spark_jobs/load_data.py", "--users", "60", "--items", "30",
                                "--events", "3000", "--days", "20"))
    assert loaded["events"] > 0, loaded

    stages = _last_json(_submit(cluster, "spark_jobs/batch.py", "all", "--run-date", loaded["last_date"]))
    # after the check:
    assert [s["stage"] for s in stages] == ["train", "sequence", "evaluate", "gate", "publish"], stages
    assert stages[-1]["status"] == "published", stages
    version = stages[-1]["model_version"]

    items = DeltaTable(settings.table_path(ITEMS.name)).to_pyarrow_table(columns=["item_id", "category"]).to_pylist()
    user = f"cluster-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    viewed = [row["item_id"] for row in items[:3]]
    events = [{"event_id": f"{user}-{n}", "user_id": user, "item_id": item, "event_type": "view", "ts": now}
              for n, item in enumerate(viewed)]
    _produce(settings, events)
    started = time.monotonic()
    _submit(cluster, "spark_jobs/stream.py", "--available-now")
    print(f"stream --available-now took {time.monotonic() - started:.0f}s")

    bronze = DeltaTable(settings.table_path(EVENTS_BRONZE.name)).to_pyarrow_table(columns=["user_id", "event_id"])
    landed = sorted(r["event_id"] for r in bronze.to_pylist() if r["user_id"] == user)
    assert landed == sorted(e["event_id"] for e in events)
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    try:
        assert set(client.zrange(RedisKeys(settings.redis.key_prefix).recent_items(user), 0, -1)) == set(viewed)
    finally:
        client.close()
    profile, vector = stored_profile(settings, user)
    assert profile[rk.PROFILE_EVENTS] == len(events)
    assert profile[rk.PROFILE_MODEL] == version and vector  # the executors read the published factors (delta-rs)
    categories = {f"c:{row['category']}" for row in items[:3]}
    assert categories <= set(profile[rk.PROFILE_INTERESTS]), profile  # ... and the catalogue

    apps = {app["name"]: app for app in _applications(cluster)}
    prefix = settings.spark.app_name
    assert {f"{prefix}-load-data", f"{prefix}-batch-all", f"{prefix}-stream"} <= set(apps), sorted(apps)
    work = cluster.state_dir / "work"
    for app in apps.values():  # every application's executor fetched the package zip and the connector jars
        executor_dirs = list((work / app["id"]).iterdir())
        assert executor_dirs, app
        shipped = {p.name for d in executor_dirs for p in d.iterdir()}
        assert "recsys.zip" in shipped, (app["name"], shipped)
        assert any(name.startswith("delta-spark") for name in shipped), (app["name"], shipped)


def _script_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    master, master_ui, worker_ui = _free_ports(3)
    return {**os.environ, "RECSYS_ENV": "test", "RECSYS__SERVICES__STATE_DIR": str(tmp_path),
            "RECSYS__SERVICES__SPARK_MASTER_PORT": str(master),
            "RECSYS__SERVICES__SPARK_MASTER_UI_PORT": str(master_ui),
            "RECSYS__SERVICES__SPARK_WORKER_UI_PORT": str(worker_ui), **overrides}


def test_status_and_down_without_a_cluster(tmp_path: Path):
    env = _script_env(tmp_path)
    status = subprocess.run(["bash", str(CLUSTER_SH), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "not running" in status.stdout
    down = subprocess.run(["bash", str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr


def test_up_refuses_a_taken_port_and_starts_nothing(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _script_env(tmp_path, RECSYS__SERVICES__SPARK_MASTER_PORT=str(port))
        up = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode != 0
    assert f"port {port} is already in use" in up.stderr and "RECSYS__SERVICES__SPARK_MASTER_PORT" in up.stderr
    assert not list(tmp_path.glob("spark-cluster/*.pid"))
