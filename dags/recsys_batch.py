"""Batch layer schedule: data quality -> train and tune -> sequence model -> evaluate -> gate -> publish -> Delta
maintenance.

Only wiring: each task spark-submits one stage of spark_jobs/batch.py for the run date ({{ ds }});
the work is in recsys.batch.stages, the settings in conf/. The Spark master comes from the Airflow
connection named by airflow.spark_conn_id. Every stage is safe to retry and to re-run for a date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, chain

from recsys.batch.stage_runner import DAG_STAGES
from recsys.config import PROJECT_ROOT, get_settings
from recsys.spark.conf import base_conf, connector_jars, driver_env
from recsys.spark.package import PACKAGE_ZIP

settings = get_settings()
jars = connector_jars(settings)


def stage_task(stage: str) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=stage,
        conn_id=settings.airflow.spark_conn_id,
        application=str(PROJECT_ROOT / "spark_jobs" / "batch.py"),
        application_args=[stage, "--run-date", "{{ ds }}", "--env", settings.env],
        jars=",".join(jars) if jars else None,
        packages=None if jars else ",".join(settings.spark.packages),
        py_files=str(PACKAGE_ZIP) if PACKAGE_ZIP.exists() else None,  # built by make setup
        conf=base_conf(settings),
        driver_memory=settings.spark.driver_memory,
        env_vars=driver_env(settings),
        name=f"{settings.spark.app_name}-{stage}",
        verbose=False,
    )


with DAG(
    dag_id="recsys_batch",
    schedule=settings.airflow.schedule,
    # A run has tasks only for logical dates from start_date on; early enough for the UCI Online Retail
    # data (2010-12 .. 2011-12, `make demo DATA=retail`). catchup is off, so nothing is backfilled.
    start_date=datetime(2010, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": settings.airflow.retries, "retry_delay": timedelta(minutes=2)},
    tags=["recsys", "batch"],
    doc_md=__doc__,
) as dag:
    chain(*[stage_task(stage) for stage in DAG_STAGES])
