"""A pool forked from the Spark driver leaves the driver's py4j connections alone (recsys.spark.forking)."""

import gc
import logging
import time

import pytest

from recsys.spark.forking import forked_pool

pytestmark = pytest.mark.spark


def _double(x: int) -> int:
    return 2 * x


def _churn(spark) -> None:
    """Spark calls whose proxies py4j's finalizer thread releases on its own connection, then time for it."""
    for _ in range(10):
        frame = spark.range(5).selectExpr("id * 2 AS x")
        frame.count()
        del frame
    gc.collect()
    time.sleep(2.5)  # the finalizer thread wakes every second


def test_a_forked_pool_does_not_reset_the_drivers_connections(spark, caplog):
    _churn(spark)  # the finalizer thread now holds a connection of its own, which a child would shut down
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            with forked_pool(2) as pool:
                assert pool.map(_double, range(4)) == [0, 2, 4, 6]
            _churn(spark)
        assert spark.range(3).count() == 3
    resets = [r.getMessage() for r in caplog.records if "while sending" in r.getMessage()]
    assert resets == []
