"""Offline quality, one run per data set: the served ranking (the serving library on the batch outputs) against
each of its signals alone, Spark ALS, the `implicit` library's ALS at the same rank with its default settings,
popularity, item-kNN and content-based, all on the same split with the production evaluation code.

UCI Online Retail: a time cut `--window-days` (28) before the last event; the relevant items of a shopper are
those bought after the cut and never had before it. MovieLens 100k: the 75/25 per-user random split of
published tables (every rating is a watched film: the repurchase policy treats it as owned). ALS, the merge
weights and popularity's half-life are tuned on the time-aware validation split cut from the train part only
(`validation.*`); the test part is scored once, at the end. Prints one table per data set and writes an HTML
report to .local/reports/bench-<data set>.html.

    .venv/bin/python bench/quality.py [--datasets movielens online-retail] [--trials N] [--budget S]
    .venv/bin/python bench/quality.py --smoke   # a generated shop of a few hundred events (CI)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import pandas as pd
from implicit_als import implicit_candidates
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys.batch.backfill import from_pandas
from recsys.batch.content import item_profiles
from recsys.batch.evaluation import evaluate_models
from recsys.batch.interactions import build_interactions, rebuilt_pairs
from recsys.batch.served_evaluation import FULL_SCORING, SERVED, best_baseline
from recsys.batch.splits import cut_split, evaluation_split
from recsys.batch.stages import with_tuned
from recsys.batch.tuning import tune_als
from recsys.config import PROJECT_ROOT, AlsConfig, Settings, get_settings
from recsys.contracts.tables import EVENT_PAYLOAD_DDL, ITEMS, USERS
from recsys.data.frames import ShopData
from recsys.data.movielens import fetch_movielens_100k, load_movielens_100k
from recsys.data.online_retail import load_online_retail
from recsys.data.synthetic import SyntheticShopSpec, generate_shop
from recsys.logging_setup import setup_logging
from recsys.reports.evaluation_report import render_report, write_report
from recsys.spark.session import get_spark

RETAIL = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
IMPLICIT_DEFAULTS = {"regularization": 0.01, "alpha": 1.0, "iterations": 15}  # implicit 0.7's defaults


@dataclass(frozen=True)
class Protocol:
    split: str  # "cut": a time cut before the last event; "random": per-user random (published tables)
    owned_events: list[str]  # what the repurchase policy counts as owned on this data set
    # validation.split has the test's shape: a calendar cut for a shop; on MovieLens most users rated all their
    # films in one sitting, so a cut 28 days before the end leaves ~80 users and says little about a random split


PROTOCOLS = {"online-retail": Protocol("cut", ["purchase"]), "movielens": Protocol("random", ["view"]),
             "smoke": Protocol("cut", ["purchase"])}


def shop_of(name: str) -> ShopData:
    if name == "movielens":
        return load_movielens_100k(fetch_movielens_100k(PROJECT_ROOT / ".local" / "datasets" / "ml-100k"))
    if name == "online-retail":
        return load_online_retail(RETAIL)
    return generate_shop(SyntheticShopSpec(n_users=60, n_items=40, n_events=3000, n_categories=6, days=60.0, seed=3))


def splits(spark: SparkSession, settings: Settings, shop: ShopData, protocol: Protocol, window_days: float
           ) -> tuple[DataFrame, DataFrame, DataFrame, str, Column]:
    """(train interactions, the events they come from, test (user_id, item_id) pairs, description, the time the
    train interactions are decayed to) of the data set's protocol."""
    # Kept: a plan built on the pandas frame itself ships all of it with every task that reads it again (a
    # rebuild with a tuned interaction half-life did, and ran a 2 GB driver out of heap on UCI Online Retail).
    events = from_pandas(spark, shop.events, EVENT_PAYLOAD_DDL).persist()
    owned = settings.serving.repurchase.owned_events
    if protocol.split == "random":
        last = events.agg(F.max("ts")).first()[0]
        interactions = build_interactions(events, settings.events, F.lit(last), owned)
        train, test = evaluation_split(interactions, settings.evaluation)
        return (train.persist(), events, test.select("user_id", "item_id").persist(), "per-user random 75/25",
                F.lit(last))
    last = events.agg(F.max("ts")).first()[0]
    cut = pd.Timestamp(last) - pd.Timedelta(days=window_days)
    before = events.where(F.col("ts") <= F.lit(cut))
    after = events.where(F.col("ts") > F.lit(cut))
    train = build_interactions(before, settings.events, F.lit(cut), owned).persist()
    later = build_interactions(after, settings.events, F.lit(last), owned)
    described = f"time cut {cut} (last {window_days:g} days), new items only"
    return train, before, cut_split(train, later).persist(), described, F.lit(cut)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["online-retail", "movielens"], choices=list(PROTOCOLS))
    parser.add_argument("--trials", type=int, default=None,
                        help="most ALS tuning trials per data set (default tuning.max_trials, the product's)")
    parser.add_argument("--budget", type=float, default=None,
                        help="ALS tuning time budget per data set in s (default tuning.budget_s)")
    parser.add_argument("--window-days", type=float, default=28, help="test window of the time cut (days)")
    parser.add_argument("--smoke", action="store_true", help="a tiny generated shop, to check the bench runs")
    parser.add_argument("--baselines", nargs="*", default=None, help="Spark baselines (default evaluation.baselines)")
    parser.add_argument("--signals", nargs="*", default=None, help="signals scored alone (default evaluation.signals)")
    parser.add_argument("--no-spark-als", action="store_true", help="leave Spark's ALS alone out of the test table")
    args = parser.parse_args()
    setup_logging()  # tuning trials and evaluated models are logged as they finish
    base = get_settings()
    spark = get_spark(base, "bench-quality")
    spark.sparkContext.setCheckpointDir(base.checkpoint_path("bench-als"))
    for name in ["smoke"] if args.smoke else args.datasets:
        print(run(spark, base, name, args))


def run(spark: SparkSession, base: Settings, name: str, args: argparse.Namespace) -> str:
    """Tune on validation, score on test; the printed table."""
    protocol = PROTOCOLS[name]
    overrides = {key: value for key, value in (("baselines", getattr(args, "baselines", None)),
                                               ("signals", getattr(args, "signals", None))) if value is not None}
    settings = base.model_copy(update={
        "evaluation": base.evaluation.model_copy(update={"split": "random", "test_fraction": 0.25, **overrides}),
        "tuning": base.tuning.model_copy(update={"max_trials": args.trials or base.tuning.max_trials,
                                                 "budget_s": args.budget or base.tuning.budget_s}),
        "serving": base.serving.model_copy(update={"repurchase": base.serving.repurchase.model_copy(
            update={"owned_events": protocol.owned_events})}),
        "validation": base.validation.model_copy(update={"split": protocol.split}),
    })
    if args.smoke:
        settings = settings.model_copy(update={
            "als": settings.als.model_copy(update={"rank": 4, "max_iter": 3}),
            "tuning": settings.tuning.model_copy(update={"max_trials": 1, "rank": [4], "max_iter": [3],
                                                         "weight_rounds": 1, "weight_steps": [0.0, 1.0]})})
    shop = shop_of(name)
    items, users = from_pandas(spark, shop.items, ITEMS.ddl), from_pandas(spark, shop.users, USERS.ddl)
    train, events, test, described, as_of = splits(spark, settings, shop, protocol, args.window_days)
    started = time.time()
    tuned = tune_als(train, events, settings, items, users)
    tuning_s = time.time() - started
    chosen = with_tuned(settings, tuned.weights, tuned.popularity_half_life_days, tuned.interaction_half_life_days,
                        tuned.max_per_category)
    if chosen.events.half_life_days != settings.events.half_life_days:  # the same pairs, decayed as tuning chose
        rebuilt = rebuilt_pairs(train, events, chosen.events, as_of.cast("timestamp"),
                                settings.serving.repurchase.owned_events).persist()
        rebuilt.count()
        train.unpersist()
        train = rebuilt
    profiles = item_profiles(items, settings.content).persist()
    implicit = implicit_candidates(AlsConfig(**{**tuned.best.model_dump(), "alpha": IMPLICIT_DEFAULTS["alpha"],
                                                "max_iter": IMPLICIT_DEFAULTS["iterations"]}),
                                   IMPLICIT_DEFAULTS["regularization"])
    results = evaluate_models(train, chosen, tuned.best, profiles, extra={"implicit_als": implicit},
                              served=(items, users), split=(train, test),
                              spark_als=not getattr(args, "no_spark_als", False))
    k = settings.evaluation.k
    lines = [f"\n{name}: {train.count()} train interactions, {test.count()} held-out pairs of "
             f"{test.select('user_id').distinct().count()} shoppers, {described}, k={k}",
             f"tuned on validation in {tuning_s:.0f}s ({len(tuned.trials)} ALS trials): ALS rank={tuned.best.rank} "
             f"max_iter={tuned.best.max_iter} reg_param={tuned.best.reg_param:.3g} alpha={tuned.best.alpha:.3g}; "
             f"interaction half-life {tuned.interaction_half_life_days:g} d; category cap {tuned.max_per_category}; "
             f"popularity half-life {tuned.popularity_half_life_days:g} d; merge "
             + ", ".join(f"{w}={v:g}" for w, v in tuned.weights.model_dump().items()),
             f"validation: served NDCG {tuned.validation[SERVED]['ndcg']:.4f}, best single signal "
             f"{best_baseline(tuned.validation)[0]} {best_baseline(tuned.validation)[1]:.4f}",
             f"{'model':<14}{'NDCG@k':>9}{'P@k':>9}{'MAP@k':>9}{'R@k':>9}{'coverage':>10}"]
    for model, m in results.items():
        lines.append(f"{model:<14}{m['ndcg']:9.4f}{m['precision']:9.4f}{m['map']:9.4f}{m['recall']:9.4f}"
                     f"{m['coverage']:10.4f}")
    served, als = results[SERVED]["ndcg"], results["implicit_als"]["ndcg"]
    knn = {name: m["ndcg"] for name, m in results.items() if name in ("item_knn", "signal:item_knn")}
    lines.append(f"served / implicit ALS (rank {tuned.best.rank}, defaults) = {served / max(als, 1e-12):.2f}x; "
                 + "; ".join(f"served - {name} = {served - v:+.4f}" for name, v in knn.items()))
    if FULL_SCORING in results:
        full = results[FULL_SCORING]["ndcg"]
        lines.append(f"two-stage retrieval: served {served:.4f} against every item scored {full:.4f} "
                     f"({(served - full) / max(full, 1e-12):+.2%})")
    report = base.report_path(f"bench-{name}")
    write_report(render_report(f"bench-{name}", results, tuned.trials, {
        "data set": name, "split": described, "ALS": str(tuned.best.model_dump()),
        "merge": str(tuned.weights.model_dump()), "implicit": str(IMPLICIT_DEFAULTS)}, k), report)
    lines.append(f"report: {report}")
    for frame in (train, test, profiles):
        frame.unpersist()
    return "\n".join(lines)


if __name__ == "__main__":
    main()
