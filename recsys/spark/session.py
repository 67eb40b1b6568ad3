"""Build a SparkSession from configuration, the same way under spark-submit and from plain Python.

Under spark-submit the master and jars come from the command line (see recsys.spark.submit), so
nothing here assumes local mode; when Python launches the JVM itself (tests, notebooks) the
configured master, jars and driver memory are applied.
"""

from __future__ import annotations

import glob
import os
import sys

from pyspark.sql import SparkSession

from recsys.config import Settings


def connector_jars(settings: Settings) -> list[str]:
    """Jars resolved into spark.jars_dir by `make setup`, or [] to fall back to Maven coordinates."""
    jars_dir = settings.path(settings.spark.jars_dir)
    if not jars_dir or "://" in jars_dir:
        return []
    return sorted(glob.glob(os.path.join(jars_dir, "*.jar")))


def base_conf(settings: Settings) -> dict[str, str]:
    """Settings every session needs, whoever launched the JVM."""
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    conf.update(settings.spark.extra_conf)
    return conf


def launch_conf(settings: Settings) -> dict[str, str]:
    """Settings that only take effect when this process starts the JVM (not under spark-submit)."""
    jars = connector_jars(settings)
    conf = {"spark.master": settings.spark.master, "spark.driver.memory": settings.spark.driver_memory}
    if jars:
        conf["spark.jars"] = ",".join(jars)
    else:
        conf["spark.jars.packages"] = ",".join(settings.spark.packages)
    return conf


def _launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(settings: Settings, app: str) -> SparkSession:
    """Return the process's SparkSession, creating it from configuration on first use."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(f"{settings.spark.app_name}-{app}")
    conf = base_conf(settings)
    if not _launched_by_spark_submit():
        conf.update(launch_conf(settings))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
