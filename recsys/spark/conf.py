"""Spark settings derived from configuration, without importing pyspark.

Airflow's DAG (in its own virtual environment, without pyspark) and recsys.spark.session both use
these, so a job is configured the same way whoever submits it.
"""

from __future__ import annotations

import glob
import os

from recsys.config import PROJECT_ROOT, Settings
from recsys.serving.blas_threads import BLAS_THREAD_VARIABLES
from recsys.spark.class_archive import JAVA_OPTIONS, archive_option
from recsys.spark.package import PACKAGE_ZIP

MALLOC_ARENAS = "MALLOC_ARENA_MAX"  # glibc's variable: each thread's arena keeps what it freed, up to 8 per core


def connector_jars(settings: Settings) -> list[str]:
    """Jars resolved into spark.jars_dir by `make setup`, or [] to fall back to Maven coordinates."""
    jars_dir = settings.path(settings.spark.jars_dir)
    if not jars_dir or "://" in jars_dir:
        return []
    return sorted(glob.glob(os.path.join(jars_dir, "*.jar")))


def python_executable(settings: Settings) -> str:
    """The configured interpreter; a bare name (python3) is looked up on each node's PATH."""
    python = settings.spark.python
    return settings.path(python) if "/" in python else python


def base_conf(settings: Settings) -> dict[str, str]:
    """Settings every session needs, whoever launched the JVM."""
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # Delta rebuilds table state with this many tasks on every idempotent commit (default 50).
        "spark.databricks.delta.snapshotPartitions": str(settings.spark.shuffle_partitions),
        # AQE fits each shuffle to the data: shuffle_partitions is only the ceiling it coalesces down from.
        "spark.sql.adaptive.enabled": str(settings.spark.adaptive).lower(),
        "spark.sql.adaptive.coalescePartitions.enabled": str(settings.spark.adaptive).lower(),
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": f"{settings.spark.advisory_partition_mb}m",
        "spark.sql.session.timeZone": "UTC",
        # A broadcast join's hash table takes at least one page, however small its table: at Spark's default
        # (32 MB at a 2g heap) three joins of a 15,000-user sample held 86 MB of the driver's heap.
        "spark.buffer.pageSize": settings.spark.page_size,
        # Jobs of different pools (the stream's two queries, recsys.speed.stream) share task slots fairly;
        # within a pool, and for a job that names none, they run in order as under FIFO.
        "spark.scheduler.mode": "FAIR",
        "spark.pyspark.python": python_executable(settings),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.executorEnv.RECSYS_ENV": settings.env,
        # Relative paths (storage.*) hang off the project root; executors on a cluster import recsys from the
        # --py-files zip, whose location says nothing about it (recsys.config.PROJECT_ROOT).
        "spark.executorEnv.RECSYS_HOME": str(PROJECT_ROOT),
    }
    # One native BLAS thread per task: Spark already runs a task per core (executors on a cluster; the
    # driver's own environment in local mode, set by recsys.spark.submit and get_spark).
    conf.update({f"spark.executorEnv.{name}": value for name, value in process_env(settings).items()})
    conf.update(settings.spark.extra_conf)
    options = [settings.spark.driver_java_options, conf.get(JAVA_OPTIONS, ""), archive_option(settings) or ""]
    if any(options):  # the configured ones first, so an operator's extra_conf and then the archive's win
        conf[JAVA_OPTIONS] = " ".join(option for option in options if option)
    return conf


def process_env(settings: Settings) -> dict[str, str]:
    """What every Spark process (driver and executors) runs with: the BLAS thread limit and malloc arenas."""
    env = {name: str(settings.spark.blas_threads) for name in BLAS_THREAD_VARIABLES}
    if settings.spark.malloc_arenas > 0:
        env[MALLOC_ARENAS] = str(settings.spark.malloc_arenas)
    return env


def driver_env(settings: Settings) -> dict[str, str]:
    """Environment of a spark-submit driver (recsys.spark.submit, the Airflow DAG): in local mode the driver
    JVM runs the tasks, so it gets the executors' BLAS thread limit and malloc arenas too (process_env)."""
    return {"RECSYS_ENV": settings.env, "RECSYS_HOME": str(PROJECT_ROOT), **process_env(settings)}


def launch_conf(settings: Settings) -> dict[str, str]:
    """Settings that only take effect when this process starts the JVM (not under spark-submit)."""
    jars = connector_jars(settings)
    conf = {"spark.master": settings.spark.master, "spark.driver.memory": settings.spark.driver_memory}
    if jars:
        conf["spark.jars"] = ",".join(jars)
    else:
        conf["spark.jars.packages"] = ",".join(settings.spark.packages)
    return conf


def submit_args(settings: Settings, include_master: bool = True) -> list[str]:
    """Arguments between `spark-submit` and the job file: master, connector jars, driver memory, conf."""
    args = ["--master", settings.spark.master] if include_master else []
    jars = connector_jars(settings)
    args += ["--jars", ",".join(jars)] if jars else ["--packages", ",".join(settings.spark.packages)]
    args += ["--driver-memory", settings.spark.driver_memory]
    if PACKAGE_ZIP.exists():
        args += ["--py-files", str(PACKAGE_ZIP)]
    for key, value in base_conf(settings).items():
        args += ["--conf", f"{key}={value}"]
    return args
