"""bench/quality.py at its smoke size: a tiny generated shop through tuning, the served evaluation and every
baseline, on the run's shared SparkSession."""

import argparse
import sys

import pytest

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.spark


def test_the_quality_bench_prints_the_served_ranking_against_its_baselines(spark, settings, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    sys.modules.pop("quality", None)
    import quality

    spark.sparkContext.setCheckpointDir(settings.checkpoint_path("bench-als"))
    args = argparse.Namespace(trials=1, budget=60.0, window_days=28.0, smoke=True)
    table = quality.run(spark, settings, "smoke", args)
    header = table.splitlines().index(next(line for line in table.splitlines() if line.startswith("model ")))
    rows = {}
    for line in table.splitlines()[header + 1:]:
        if len(line.split()) != 6:  # model, NDCG, P, MAP, R, coverage
            break
        rows[line.split()[0]] = line.split()[1:]
    for model in ("served", "served:full", "signal:factors", "signal:item_knn", "als", "item_knn", "implicit_als",
                  "popularity"):
        assert model in rows and 0.0 <= float(rows[model][0]) <= 1.0, model
    assert "served / implicit ALS" in table and "validation: served NDCG" in table
    assert "two-stage retrieval: served" in table
