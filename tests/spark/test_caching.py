"""released_caches: a tuning trial's cached blocks go when it ends; what was cached before stays."""

import pytest

from recsys.spark.caching import released_caches

pytestmark = pytest.mark.spark


def test_what_a_block_cached_is_released_and_what_was_cached_before_stays(spark):
    persistent = spark.sparkContext._jsc.getPersistentRDDs
    kept = spark.range(100).persist()
    kept.count()
    before = set(persistent().keys())
    with released_caches(spark):
        inner = spark.range(1000).selectExpr("id % 7 AS k").persist()
        inner.count()
        assert set(persistent().keys()) > before  # the block's cache exists inside it
    assert set(persistent().keys()) == before
    assert kept.count() == 100 and inner.count() == 1000  # released blocks are recomputed, not lost
    kept.unpersist()
