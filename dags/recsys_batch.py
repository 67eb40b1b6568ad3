"""Batch layer schedule: train ALS on the Delta events and publish a model version.

Only wiring: the work is in spark_jobs/train.py (spark-submit), the settings in conf/. The Spark
master comes from the Airflow connection named by airflow.spark_conn_id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

from recsys.config import PROJECT_ROOT, get_settings
from recsys.spark.conf import base_conf, connector_jars
from recsys.spark.package import PACKAGE_ZIP

settings = get_settings()
jars = connector_jars(settings)

with DAG(
    dag_id="recsys_batch",
    schedule=settings.airflow.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": settings.airflow.retries, "retry_delay": timedelta(minutes=2)},
    tags=["recsys", "batch"],
    doc_md=__doc__,
) as dag:
    train_and_publish = SparkSubmitOperator(
        task_id="train_and_publish",
        conn_id=settings.airflow.spark_conn_id,
        application=str(PROJECT_ROOT / "spark_jobs" / "train.py"),
        application_args=["--run-date", "{{ ds }}", "--env", settings.env],
        jars=",".join(jars) if jars else None,
        packages=None if jars else ",".join(settings.spark.packages),
        py_files=str(PACKAGE_ZIP) if PACKAGE_ZIP.exists() else None,  # built by make setup
        conf=base_conf(settings),
        driver_memory=settings.spark.driver_memory,
        env_vars={"RECSYS_ENV": settings.env, "RECSYS_HOME": str(PROJECT_ROOT)},
        name=f"{settings.spark.app_name}-train",
        verbose=False,
    )
