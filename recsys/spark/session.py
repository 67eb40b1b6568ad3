"""Build a SparkSession from configuration, the same way under spark-submit and from plain Python.

Under spark-submit the master and jars come from the command line (recsys.spark.conf.submit_args),
so nothing here assumes local mode; when Python launches the JVM itself (tests, notebooks) the
configured master, jars and driver memory are applied.
"""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from recsys.config import Settings
from recsys.spark.blas import log_blas
from recsys.spark.conf import base_conf, launch_conf, process_env, python_executable


def _launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(settings: Settings, app: str) -> SparkSession:
    """Return the process's SparkSession, creating it from configuration on first use.

    A new session logs which BLAS its JVMs and numpy loaded (recsys.spark.blas).
    """
    os.environ.setdefault("PYSPARK_PYTHON", python_executable(settings))
    for name, value in process_env(settings).items():  # read by a JVM this process launches (local mode)
        os.environ.setdefault(name, value)
    existing = SparkSession.getActiveSession()
    builder = SparkSession.builder.appName(f"{settings.spark.app_name}-{app}")
    conf = base_conf(settings)
    if not _launched_by_spark_submit():
        conf.update(launch_conf(settings))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if existing is None:
        log_blas(spark)
    return spark
