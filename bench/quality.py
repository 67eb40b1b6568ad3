"""Offline quality: ALS against the baselines on MovieLens 100k (75/25 per user) and UCI Online Retail
(time split), with the production evaluation code. Prints one table per data set.

    .venv/bin/python bench/quality.py [--datasets movielens online-retail] [--rank 64]
"""

from __future__ import annotations

import argparse
import time

from pyspark.sql import functions as F

from recsys.batch.backfill import from_pandas
from recsys.batch.evaluation import evaluate_models
from recsys.batch.interactions import build_interactions
from recsys.config import PROJECT_ROOT, get_settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL
from recsys.data.movielens import fetch_movielens_100k, load_movielens_100k
from recsys.data.online_retail import load_online_retail
from recsys.spark.session import get_spark

RETAIL = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
# Every rating counts the same and nothing decays: the protocol of the published MovieLens tables.
PROTOCOLS = {"movielens": ("random", 1e9), "online-retail": ("time", 1e9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--max-iter", type=int, default=15)
    parser.add_argument("--reg-param", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=5.0)
    args = parser.parse_args()
    base = get_settings()
    spark = get_spark(base, "bench-quality")
    for name in args.datasets:
        split, half_life = PROTOCOLS[name]
        settings = base.model_copy(update={
            "als": base.als.model_copy(update={"rank": args.rank, "max_iter": args.max_iter,
                                               "reg_param": args.reg_param, "alpha": args.alpha}),
            "evaluation": base.evaluation.model_copy(update={"split": split, "test_fraction": 0.25}),
            "events": base.events.model_copy(update={"half_life_days": half_life}),
        })
        shop = (load_movielens_100k(fetch_movielens_100k(PROJECT_ROOT / ".local" / "datasets" / "ml-100k"))
                if name == "movielens" else load_online_retail(RETAIL))
        events = from_pandas(spark, shop.events, EVENT_PAYLOAD_DDL)
        interactions = build_interactions(events, settings.events, F.current_timestamp()).persist()
        started = time.time()
        results = evaluate_models(interactions, settings)
        print(f"\n{name}: {interactions.count()} interactions, split={split}, k={settings.evaluation.k}, "
              f"ALS rank {args.rank}, {time.time() - started:.0f}s")
        print(f"{'model':<12}{'NDCG@k':>9}{'P@k':>9}{'MAP@k':>9}{'R@k':>9}{'coverage':>10}")
        for model, m in results.items():
            print(f"{model:<12}{m['ndcg']:9.4f}{m['precision']:9.4f}{m['map']:9.4f}{m['recall']:9.4f}"
                  f"{m['coverage']:10.4f}")
        interactions.unpersist()


if __name__ == "__main__":
    main()
