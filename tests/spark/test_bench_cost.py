"""bench/training_cost.py at its smoke size: a few thousand events prepared, Spark's part scored on the run's
shared SparkSession (no second JVM), `implicit` measured in its own process as the bench does."""

import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.spark


def test_the_cost_bench_prints_time_memory_and_where_the_time_goes(spark, settings, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    sys.modules.pop("training_cost", None)
    import training_cost

    folder = training_cost.prepare(spark, settings, training_cost.SMOKE_EVENTS, tmp_path)
    small = training_cost.SMOKE_RANK, training_cost.SMOKE_ITERATIONS
    spark_rows = {engine: {**training_cost.run_spark(folder, *small, als), "seconds": 1.0, "peak_mb": 1.0}
                  for engine, als in training_cost.ENGINES.items() if als is not None}
    implicit_row = training_cost.measure("implicit", folder, *small)
    assert set(spark_rows) == {"spark", "spark-blocks", "spark-mllib"}  # as configured, in blocks, MLlib
    for row in (*spark_rows.values(), implicit_row):
        assert row["users"] == implicit_row["users"] > 0  # the same sampled users
        assert row["interactions"] == implicit_row["interactions"] > 0
        assert 0.0 <= row["ndcg"] <= 1.0
        assert set(row["phases"]) == {"start", "read", "fit", "top-k", "score"}
    assert implicit_row["peak_mb"] > 0 and implicit_row["seconds"] > 0
    rows = {**spark_rows, "implicit": implicit_row}
    table = training_cost.report({training_cost.SMOKE_EVENTS: rows, 2 * training_cost.SMOKE_EVENTS: rows})
    assert "where the time went" in table and "time per interaction" in table
    assert "spark / implicit" in table and "spark-mllib / implicit" in table
