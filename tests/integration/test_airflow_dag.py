"""The batch DAG in Airflow's own environment: it parses, and `airflow dags test` publishes a model."""

import json
import os
import subprocess
from itertools import pairwise

import pytest
from deltalake import DeltaTable

from recsys.batch.backfill import append_events
from recsys.config import PROJECT_ROOT
from recsys.contracts import model_version as mv
from recsys.contracts.tables import USER_FACTORS
from recsys.stores.model_store import DeltaModelStore
from tests.shop_data import two_taste_events

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.spark]
AIRFLOW_SH = str(PROJECT_ROOT / "docker" / "local" / "airflow.sh")
STAGES = ["check", "train", "sequence", "evaluate", "gate", "publish", "maintain"]
DAG_SHAPE = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()  # the DAGs folder (AIRFLOW__CORE__DAGS_FOLDER) as the DAG processor parses it
dag = bag.dags.get("recsys_batch")
print(json.dumps([bag.import_errors, sorted(bag.dags),
                  {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} if dag else {},
                  {t.task_id: t.retries for t in dag.tasks} if dag else {},
                  {t.task_id: " ".join(t.application_args) for t in dag.tasks} if dag else {}]))
"""


def _airflow(settings, *args: str, timeout: int = 1400) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECSYS_ENV": settings.env,
           "RECSYS__STORAGE__DELTA_ROOT": settings.storage.delta_root,
           "RECSYS__STORAGE__CHECKPOINT_ROOT": settings.storage.checkpoint_root,
           "RECSYS__STORAGE__REPORTS_ROOT": settings.storage.reports_root,
           # The DAG's wiring is under test here; tuning, the baselines and the gate's bar in tests/spark
           "RECSYS__TUNING__ENABLED": "false", "RECSYS__EVALUATION__BASELINES": "[popularity]",
           "RECSYS__GATE__MIN_NDCG": "0.0", "RECSYS__GATE__BASELINE_MARGIN": "-1.0",
           "AIRFLOW_LOG_LEVEL": "INFO"}
    return subprocess.run(["bash", AIRFLOW_SH, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_dag_has_no_import_errors_and_chains_the_stages(settings):
    """One Airflow interpreter parses the DAG folder as the DAG processor does (each `airflow` CLI call costs
    an interpreter and Airflow's start-up: this test used three)."""
    shape = _airflow(settings, "python", "-c", DAG_SHAPE)
    assert shape.returncode == 0, shape.stderr[-2000:]
    errors, dags, downstream, retries, args = json.loads(shape.stdout.strip().splitlines()[-1])
    assert errors == {} and dags == ["recsys_batch"]
    assert sorted(downstream) == sorted(STAGES)
    assert downstream == {a: [b] for a, b in pairwise(STAGES)} | {STAGES[-1]: []}
    assert set(retries.values()) == {settings.airflow.retries}
    assert all(a.startswith(f"{stage} --run-date {{{{ ds }}}}") for stage, a in args.items())


@pytest.mark.timeout(1500)  # six spark-submits in sequence; well over the default per-test limit on 2 cores
def test_airflow_dags_test_publishes_a_model(spark, own_lake):
    settings = own_lake  # its 2026-11-05 model must not outrank the batch tests' older run dates in the shared lake
    append_events(spark, settings, two_taste_events())
    run = _airflow(settings, "test", "2026-11-05")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    store = DeltaModelStore(settings)
    published = [r for r in store.registry() if r["run_date"] == "2026-11-05"]
    history = {h["operation"] for h in DeltaTable(settings.table_path(USER_FACTORS.name)).history()}
    assert {"OPTIMIZE", "SET TBLPROPERTIES"} <= history  # the maintain task ran on the factor table
    assert [r["status"] for r in published] == [mv.PUBLISHED]
    assert store.current_version() == published[0]["model_version"]
    params = json.loads(published[0]["params"])
    assert "reason" in params["sequence"] and params["merge"]["sequence"] == params["sequence"]["weight"]
    model = store.load(published[0]["model_version"])  # the sequence task's weights ride with the version
    assert (model.sequence is not None) == ("stats" in params["sequence"])
