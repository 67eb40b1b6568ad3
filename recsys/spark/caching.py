"""Release what a block of Spark work cached, so a loop of fits does not fill the driver's memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def released_caches(spark: SparkSession) -> Iterator[None]:
    """Unpersist every RDD persisted inside the block once it ends (what was cached before stays).

    An ALS fit caches its id indexes and its factors; a tuning trial turns them into numpy and needs them no
    more, but nothing unpersisted them: after 21 fits on a shop's year they sat in a 2 GiB driver beside the
    baselines' joins (one run died there with an OutOfMemoryError; those joins still press on the heap).
    """
    jsc = spark.sparkContext._jsc
    before = set(jsc.getPersistentRDDs().keys())
    try:
        yield
    finally:
        for rdd_id, rdd in jsc.getPersistentRDDs().items():
            if rdd_id not in before:
                rdd.unpersist(False)
