"""A class-data-sharing (AppCDS) archive for the driver JVM: every spark-submit starts seconds sooner.

Each batch stage is its own spark-submit, and a cold driver JVM spends seconds loading and verifying
Spark's, Delta's and Scala's classes before any work. `make setup` runs one small job that touches what the
stages touch (Delta writes, reads, MERGE, UPDATE, an ALS fit, Arrow collects) with
`-XX:ArchiveClassesAtExit`; from then on every driver maps those classes from the archive
(`-XX:SharedArchiveFile`, added by recsys.spark.conf.base_conf while the file exists). The archive is
tied to the JDK and the class path: when either changes, setup builds it again, and a JVM that finds it
stale only warns and loads its classes as usual.

This module says where the archive is, what it is valid for and how a driver maps it; building it takes a
spark-submit, which recsys.spark.class_archive_build runs (it needs recsys.spark.conf, which needs this).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from recsys.config import Settings

JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def archive_file(settings: Settings) -> Path | None:
    """The configured archive (spark.class_archive), or None when switched off or not on this machine."""
    configured = settings.path(settings.spark.class_archive)
    return Path(configured) if configured and "://" not in configured else None


def archive_option(settings: Settings) -> str | None:
    """The driver JVM option that maps the archive, once it has been built."""
    archive = archive_file(settings)
    return f"-XX:SharedArchiveFile={archive}" if archive is not None and archive.is_file() else None


def class_path_key(spark_home: str, jar_files: list[str]) -> str:
    """What the archive is valid for: the java binary and every jar on the driver's class path (name, size)."""
    java = shutil.which("java", path=os.path.join(os.environ.get("JAVA_HOME", ""), "bin")) or shutil.which("java")
    parts = [os.path.realpath(java) if java else "no java"]
    jars = sorted([*Path(spark_home, "jars").glob("*.jar"), *map(Path, jar_files)])
    parts += [f"{jar.name}:{jar.stat().st_size}" for jar in jars]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
