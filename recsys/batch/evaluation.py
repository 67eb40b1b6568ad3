"""Offline evaluation: ALS against baselines trained and scored on the same held-out split."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.batch.als import als_factors
from recsys.batch.blocked_topk import factor_top_k
from recsys.batch.content import content_candidates
from recsys.batch.item_knn import item_knn_candidates
from recsys.batch.outputs import build_outputs
from recsys.batch.ranking_metrics import HeldOut, score_candidates
from recsys.batch.served_evaluation import SERVED, ServedEvaluator, catalogue_of, served_model, truth_of
from recsys.batch.splits import evaluation_split
from recsys.batch.tuning import end_s
from recsys.config import AlsConfig, Settings
from recsys.contracts.tables import ITEM_FACTORS, USER_FACTORS, USER_HISTORY, TableSpec

log = logging.getLogger(__name__)


def popularity_candidates(train: DataFrame, users: DataFrame, n: int) -> DataFrame:
    """(user_id, items): the n items most users interacted with, the same list for everyone."""
    top = (train.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
           .orderBy(F.desc("users"), "item_id").limit(n).collect())
    return users.select("user_id", F.array(*[F.lit(r["item_id"]) for r in top]).alias("items"))


CandidateModel = Callable[[DataFrame, int], DataFrame]  # (train split, n) -> (user_id, items best first)


def evaluate_served(train: DataFrame, test: DataFrame, settings: Settings, als: AlsConfig, items: DataFrame,
                    users: DataFrame, outputs: dict[TableSpec, DataFrame] | None = None
                    ) -> dict[str, dict[str, float]]:
    """The served ranking (settings.serving.merge) and each signal alone, on the batch outputs of `train`
    (built here unless given), scored against the (user_id, item_id) pairs of `test` as of the last event of
    `train`. Pass the sampled test pairs: every held-out shopper costs one served ranking in Python."""
    now_s = end_s(train)
    outputs = outputs or build_outputs(train, settings, als, items, users, now_s)
    model = served_model(outputs, settings, catalogue_of(items))
    return ServedEvaluator(model, truth_of(test), settings, now_s).report(settings.serving.merge)


def als_candidates(user_factors: DataFrame, item_factors: DataFrame, held: HeldOut, driver_cells: int = 0
                   ) -> DataFrame:
    """(user_id, items): the scored users' k best unseen items by ALS, by blocked top-k (never every user;
    on the driver within driver_cells user x item scores)."""
    return factor_top_k(held.restrict(user_factors), item_factors, held.seen, held.k, driver_cells)


def evaluate_models(interactions: DataFrame, settings: Settings, als: AlsConfig,
                    profiles: DataFrame | None = None,
                    extra: dict[str, CandidateModel] | None = None,
                    served: tuple[DataFrame, DataFrame] | None = None,
                    split: tuple[DataFrame, DataFrame] | None = None,
                    spark_als: bool = True) -> dict[str, dict[str, float]]:
    """Fit ALS (with the given parameters) and the baselines on the train split, score all on the test split.

    Every model is scored on the same seeded sample of held-out users (evaluation.max_users, 0 = all), and
    asked for those users only: ALS by a blocked top-k of its factors, item-kNN and content from those
    users' training items. With `served` = (items, users) the served ranking and each signal alone come
    first (evaluate_served), on the same sample; its ALS factors are the ones the "als" row scores (one fit).
    The content baseline needs item profiles; without a catalogue it is skipped (and logged). `extra`
    models (benchmarks compare other libraries) are trained and scored on the very same split. `split`
    gives (train, test) explicitly (a time cut); by default it is evaluation.split of `interactions`.
    spark_als=False leaves Spark's ALS alone out (a benchmark short of time has the factors signal alone).
    """
    cfg = settings.evaluation
    train, test = split or evaluation_split(interactions, cfg)
    train, test = train.persist(), test.persist()
    held = HeldOut.build(train, test, cfg.k, cfg.max_users, cfg.seed)
    log.info("evaluating on %d held-out users (evaluation.max_users %d)", held.users.count(), cfg.max_users)
    results: dict[str, dict[str, float]] = {}
    factors: tuple[DataFrame, DataFrame] | None = None
    if served is not None:
        items, users = served
        outputs = build_outputs(train, settings, als, items, users, end_s(train))
        factors = outputs[USER_FACTORS].persist(), outputs[ITEM_FACTORS].persist()
        # The served ranking of a sampled shopper reads only that shopper's factors and history.
        outputs = {**outputs, USER_FACTORS: held.restrict(factors[0]), ITEM_FACTORS: factors[1],
                   USER_HISTORY: held.restrict(outputs[USER_HISTORY])}
        results.update(evaluate_served(train, held.restrict(test), settings, als, items, users, outputs))
        log.info("evaluated the served ranking: %s", {m: round(v, 4) for m, v in results[SERVED].items()})
    models: dict[str, Callable[[], DataFrame]] = {}
    if spark_als:
        models["als"] = lambda: als_candidates(*(factors or als_factors(train, als)), held,
                                               cfg.driver_top_k_cells)
    if "popularity" in cfg.baselines:
        models["popularity"] = lambda: popularity_candidates(train, held.users, held.fetch)
    if "item_knn" in cfg.baselines:
        models["item_knn"] = lambda: item_knn_candidates(train, held.fetch, cfg.knn_neighbours, held.users)
    if "content" in cfg.baselines:
        if profiles is not None and not profiles.isEmpty():
            models["content"] = lambda: content_candidates(held.restrict(train), profiles, held.fetch,
                                                           settings.content.num_features)
        else:
            log.warning("content baseline skipped: the item catalogue is empty")
    for name, model in (extra or {}).items():
        models[name] = lambda model=model: model(train, held.fetch)
    for name, candidates in models.items():
        results[name] = score_candidates(candidates(), held)
        log.info("evaluated %s: %s", name, {m: round(v, 4) for m, v in results[name].items()})
    for frame in factors or ():
        frame.unpersist()
    held.unpersist()
    train.unpersist()
    test.unpersist()
    return results
