"""A class-data-sharing (AppCDS) archive for the driver JVM: every spark-submit starts seconds sooner.

Each batch stage is its own spark-submit, and a cold driver JVM spends seconds loading and verifying
Spark's, Delta's and Scala's classes before any work. `make setup` runs one small job that touches what the
stages touch (Delta writes, reads, MERGE, UPDATE, an ALS fit, Arrow collects) with
`-XX:ArchiveClassesAtExit`; from then on every driver maps those classes from the archive
(`-XX:SharedArchiveFile`, added by recsys.spark.conf.base_conf while the file exists). The archive is
tied to the JDK and the class path: when either changes, setup builds it again, and a JVM that finds it
stale only warns and loads its classes as usual.

python -m recsys.spark.class_archive        build the archive unless it matches this JDK and these jars
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from recsys.config import PROJECT_ROOT, Settings, get_settings

JAVA_OPTIONS = "spark.driver.extraJavaOptions"
WARM_UP_JOB = PROJECT_ROOT / "spark_jobs" / "warm_classes.py"


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


def exercise(spark, scratch: str) -> int:
    """What the stages do, on a few rows in `scratch`, so their classes are loaded when the archive is dumped:
    Delta create, partitioned write, read, MERGE, UPDATE, DELETE, aggregates, a window, a join, an ALS fit
    and Arrow collects. Returns the rows read back (the job prints it)."""
    from delta.tables import DeltaTable
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    path = f"{scratch}/events"
    rows = spark.range(0, 400).select((F.col("id") % 40).cast("int").alias("user"),
                                      (F.col("id") % 25).cast("int").alias("item"),
                                      (F.col("id") % 7 + 1).cast("float").alias("strength"),
                                      F.lit("2026-01-01").cast("date").alias("day"))
    rows.write.format("delta").partitionBy("day").save(path)
    table = DeltaTable.createIfNotExists(spark).location(path).addColumns(rows.schema).execute()
    table.alias("t").merge(rows.limit(10).alias("n"), "t.user = n.user AND t.item = n.item") \
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    table.update(F.col("user") == 1, {"strength": F.lit(2.0)})
    table.delete(F.col("user") == 2)
    events = spark.read.format("delta").load(path)
    newest = F.row_number().over(Window.partitionBy("user").orderBy(F.col("strength").desc()))
    events.withColumn("n", newest).where("n = 1").join(events.groupBy("item").count(), "item").toArrow()
    events.agg(F.countDistinct("user"), F.max("strength")).first()
    model = ALS(rank=2, maxIter=2, implicitPrefs=True, userCol="user", itemCol="item", ratingCol="strength",
                seed=1).fit(events)
    model.userFactors.toArrow()
    return events.count()


def build(settings: Settings) -> Path | None:
    """Build the archive with one spark-submit of the warm-up job, unless a matching one exists."""
    from recsys.spark.conf import connector_jars
    from recsys.spark.submit import spark_home, submit_command

    archive = archive_file(settings)
    if archive is None:
        print("spark.class_archive is off: nothing to build")
        return None
    key = class_path_key(spark_home(), connector_jars(settings))
    key_file = archive.with_suffix(".key")
    if archive.is_file() and key_file.is_file() and key_file.read_text() == key:
        print(f"class archive up to date: {archive}")
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)  # a stale archive must not be mapped by the JVM that builds the new one
    partial = archive.with_suffix(".partial")
    with tempfile.TemporaryDirectory(prefix="warm-classes-") as scratch:
        command, env = submit_command(settings, [str(WARM_UP_JOB), scratch],
                                      {JAVA_OPTIONS: f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=off"})
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join(result.stdout.splitlines()[-20:])
        raise RuntimeError(f"the class archive job failed (exit {result.returncode}); last lines:\n{tail}")
    partial.replace(archive)
    key_file.write_text(key)
    print(f"class archive built: {archive} ({archive.stat().st_size / 2**20:.0f} MiB)")
    return archive


if __name__ == "__main__":
    try:
        build(get_settings())
    except RuntimeError as exc:
        sys.exit(str(exc))
