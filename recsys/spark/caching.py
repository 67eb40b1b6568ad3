"""Release what a block of Spark work cached, so a loop of fits does not fill the driver's memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def released_caches(spark: SparkSession) -> Iterator[None]:
    """Unpersist every RDD persisted inside the block once it ends (what was cached before stays).

    An ALS fit caches its id indexes and its factors; a tuning trial turns them into numpy and needs them no
    more, but nothing unpersists them: twenty trials on a shop's year held enough blocks to starve a 2 GiB
    driver of execution memory (an OutOfMemoryError in the next join).
    """
    jsc = spark.sparkContext._jsc
    before = set(jsc.getPersistentRDDs().keys())
    try:
        yield
    finally:
        for rdd_id, rdd in jsc.getPersistentRDDs().items():
            if rdd_id not in before:
                rdd.unpersist(False)
