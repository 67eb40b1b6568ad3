"""ALS's dense ids: every distinct id exactly once, numbered 0..n-1, whatever the partitioning."""

import pytest

from recsys.batch.indexing import dense_index

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("partitions", [1, 7])
def test_each_distinct_id_gets_one_of_0_to_n_minus_1(spark, partitions):
    ids = [f"u{(n * 7919) % 997}" for n in range(3000)]  # 997 distinct ids, each several times
    frame = spark.createDataFrame([(i,) for i in ids], "user_id string").repartition(partitions)
    rows = dense_index(frame, "user_id", "uidx").collect()
    assert sorted(r["uidx"] for r in rows) == list(range(len(set(ids))))
    assert sorted(r["user_id"] for r in rows) == sorted(set(ids))


def test_no_ids_give_an_empty_index(spark):
    frame = spark.createDataFrame([("u1",)], "user_id string").limit(0)
    assert dense_index(frame, "user_id", "uidx").collect() == []
