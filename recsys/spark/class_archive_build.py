"""Build the driver's class-data-sharing archive (recsys.spark.class_archive): one spark-submit of a warm-up job.

python -m recsys.spark.class_archive_build   build the archive unless it matches this JDK and these jars
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from recsys.config import PROJECT_ROOT, Settings, get_settings
from recsys.spark.class_archive import JAVA_OPTIONS, archive_file, class_path_key
from recsys.spark.conf import connector_jars
from recsys.spark.submit import spark_home, submit_command

WARM_UP_JOB = PROJECT_ROOT / "spark_jobs" / "warm_classes.py"


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
