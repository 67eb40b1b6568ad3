"""Offline quality, one run per data set: tuned Spark ALS, the `implicit` library's ALS at the same rank,
popularity, item-kNN and content-based, all on the same split with the production evaluation code.

MovieLens 100k uses the 75/25 per-user random protocol of published tables; UCI Online Retail a time
split. ALS is tuned (Optuna) on a validation split cut from the train split. Prints one table per
data set and writes an HTML report with the plots to .local/reports/bench-<data set>.html.

    .venv/bin/python bench/quality.py [--datasets movielens online-retail] [--trials 8] [--budget 600]
"""

from __future__ import annotations

import argparse
import time

from implicit_als import implicit_candidates
from pyspark.sql import functions as F

from recsys.batch.backfill import from_pandas
from recsys.batch.content import item_profiles
from recsys.batch.evaluation import evaluate_models
from recsys.batch.interactions import build_interactions
from recsys.batch.splits import evaluation_split
from recsys.batch.tuning import tune_als
from recsys.config import PROJECT_ROOT, get_settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, ITEMS
from recsys.data.movielens import fetch_movielens_100k, load_movielens_100k
from recsys.data.online_retail import load_online_retail
from recsys.logging_setup import setup_logging
from recsys.reports.evaluation_report import render_report, write_report
from recsys.spark.session import get_spark

RETAIL = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
# Every rating counts the same and nothing decays: the protocol of the published MovieLens tables.
PROTOCOLS = {"movielens": ("random", 1e9), "online-retail": ("time", 1e9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument("--trials", type=int, default=8, help="most ALS tuning trials per data set")
    parser.add_argument("--budget", type=float, default=600, help="tuning time budget per data set (s)")
    parser.add_argument("--implicit-reg", type=float, default=0.05, help="implicit's (unscaled) regularization")
    args = parser.parse_args()
    setup_logging()  # tuning trials and evaluated models are logged as they finish
    base = get_settings()
    spark = get_spark(base, "bench-quality")
    spark.sparkContext.setCheckpointDir(base.checkpoint_path("bench-als"))
    for name in args.datasets:
        split, half_life = PROTOCOLS[name]
        settings = base.model_copy(update={
            "evaluation": base.evaluation.model_copy(update={"split": split, "test_fraction": 0.25}),
            "events": base.events.model_copy(update={"half_life_days": half_life}),
            "tuning": base.tuning.model_copy(update={"max_trials": args.trials, "budget_s": args.budget}),
        })
        shop = (load_movielens_100k(fetch_movielens_100k(PROJECT_ROOT / ".local" / "datasets" / "ml-100k"))
                if name == "movielens" else load_online_retail(RETAIL))
        events = from_pandas(spark, shop.events, EVENT_PAYLOAD_DDL)
        interactions = build_interactions(events, settings.events, F.current_timestamp()).persist()
        profiles = item_profiles(from_pandas(spark, shop.items, ITEMS.ddl), settings.content).persist()
        started = time.time()
        train, _ = evaluation_split(interactions, settings.evaluation)
        tuned = tune_als(train.persist(), settings)
        tuning_s = time.time() - started
        results = evaluate_models(interactions, settings, tuned.best, profiles,
                                  extra={"implicit_als": implicit_candidates(tuned.best, args.implicit_reg)})
        k = settings.evaluation.k
        print(f"\n{name}: {interactions.count()} interactions, split={split}, k={k}; ALS tuned in {tuning_s:.0f}s "
              f"({len(tuned.trials)} trials): rank={tuned.best.rank} max_iter={tuned.best.max_iter} "
              f"reg_param={tuned.best.reg_param:.3g} alpha={tuned.best.alpha:.3g}; "
              f"evaluation {time.time() - started - tuning_s:.0f}s")
        print(f"{'model':<14}{'NDCG@k':>9}{'P@k':>9}{'MAP@k':>9}{'R@k':>9}{'coverage':>10}")
        for model, m in results.items():
            print(f"{model:<14}{m['ndcg']:9.4f}{m['precision']:9.4f}{m['map']:9.4f}{m['recall']:9.4f}"
                  f"{m['coverage']:10.4f}")
        report = base.report_path(f"bench-{name}")
        write_report(render_report(f"bench-{name}", results, tuned.trials, {
            "data set": name, "split": split, "ALS": str(tuned.best.model_dump()),
            "implicit regularization": str(args.implicit_reg)}, k), report)
        print(f"report: {report}")
        interactions.unpersist()
        profiles.unpersist()
        train.unpersist()


if __name__ == "__main__":
    main()
