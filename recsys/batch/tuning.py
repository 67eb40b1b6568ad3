"""Tuning as one simple learning-to-rank: ALS, how fast interactions decay, the merge weights and
popularity's half-life, chosen together for the NDCG of the served ranking on a time-aware validation split.

The validation split is cut from the training split only (one time cut `validation.last_days` before its
last event, the shape of the test a shop faces), so the test split that evaluation reports never influences
what wins. Optuna's TPE searches the ALS parameters, each trial scored as served with the current weights;
the best ALS is then fitted again on interactions decayed with each half-life of
tuning.interaction_half_life_days (a shop's recent taste may matter more than a rating table's); then
coordinate ascent moves one merge weight (and the popularity half-life and the category cap) at a time to the
value that scores best, on the best model. The category cap (serving.max_per_category, among
tuning.max_per_category) is chosen once before the half-lives too: a cap reorders the lists, so what decay
suits a shop depends on it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.batch.interactions import build_interactions, rebuilt_pairs
from recsys.batch.outputs import als_outputs, decayed_popularity, other_outputs
from recsys.batch.served_evaluation import (
    ServedEvaluator,
    catalogue_of,
    only,
    sample,
    served_model,
    to_arrow,
    truth_of,
)
from recsys.batch.splits import cut_split, split_per_user, validation_cut
from recsys.config import AlsConfig, MergeWeights, Settings, TuningConfig
from recsys.reports.evaluation_report import Trial
from recsys.spark.caching import released_caches
from recsys.stores.model_store import FactorModel

log = logging.getLogger(__name__)
TUNED = ("rank", "max_iter", "reg_param", "alpha")


@dataclass(frozen=True)
class TuningResult:
    best: AlsConfig
    weights: MergeWeights
    popularity_half_life_days: float
    interaction_half_life_days: float  # events.half_life_days the chosen model's interactions were decayed with
    max_per_category: int  # the category cap the version is served with (serving.max_per_category)
    trials: list[Trial]
    validation: dict[str, dict[str, float]]  # the served ranking and each signal alone on the validation window


def end_s(interactions: DataFrame) -> float:
    """The latest event of the interactions (epoch seconds): "now" for a split cut from them."""
    return float(interactions.agg(F.max(F.col("last_ts").cast("double"))).first()[0] or 0.0)


@dataclass(frozen=True)
class Validation:
    """The validation split of a train split: the part fitted on, the held-out truth, its "now", the catalogue,
    and how to build the fitted part again with another interaction half-life."""

    fit_part: DataFrame
    truth: dict[str, set[str]]
    now_s: float
    catalogue: object
    rebuild: Callable[[float], DataFrame]  # half-life (days) -> the fit part's interactions decayed with it


def decayed_with(settings: Settings, half_life_days: float) -> Settings:
    """The settings with another interaction half-life (events.half_life_days)."""
    return settings.model_copy(update={"events": settings.events.model_copy(update={"half_life_days": half_life_days})})


def capped(settings: Settings, cap: int) -> Settings:
    """The settings with another category cap (serving.max_per_category)."""
    return settings.model_copy(update={"serving": settings.serving.model_copy(update={"max_per_category": cap})})


def validation_setup(train: DataFrame, events: DataFrame, settings: Settings, items: DataFrame) -> Validation:
    """The time-aware validation split of `train`.

    With validation.split "random" (a rating table, whose test split is random too) a per-user random share
    evaluation.test_fraction of `train` is held out, with another seed than the test split's. Else `events`
    are those `train` was built from: the events of its (user, item) pairs are cut in time
    (splits.validation_cut), the part before the cut is rebuilt into interactions as of the cut, and the
    items a known shopper took up after it are the truth (when no shopper is on both sides of the cut, the
    random split). The test split's pairs are not in `train`.
    """
    owned = settings.serving.repurchase.owned_events
    mine = events.join(train.select("user_id", "item_id"), ["user_id", "item_id"], "left_semi")
    if settings.validation.split == "random":  # a rating table's protocol: no time order to cut on
        return _random_validation(train, mine, settings, items)
    before, after, cut_s = validation_cut(mine, settings.validation)
    as_of = F.lit(cut_s).cast("timestamp")
    fit_part = build_interactions(before, settings.events, as_of, owned).persist()
    later = build_interactions(after, settings.events, as_of, owned)
    truth = sample(truth_of(cut_split(fit_part, later)), settings.validation.max_users)
    if not truth:  # no shopper on both sides of the cut (a young shop): nothing to score in time
        log.warning("validation: no shopper active both before and after the cut at %s; validating on a "
                    "random per-user split instead", cut_s)
        fit_part.unpersist()
        return _random_validation(train, mine, settings, items)
    return Validation(fit_part, truth, cut_s, catalogue_of(items), lambda days: build_interactions(
        before, decayed_with(settings, days).events, as_of, owned))


def _random_validation(train: DataFrame, mine: DataFrame, settings: Settings, items: DataFrame) -> Validation:
    """A per-user random share evaluation.test_fraction of `train`, seeded apart from the test split; `mine`:
    the events of `train`'s pairs, from which the fitted part is built again with another half-life."""
    evaluation = settings.evaluation
    fit_part, valid = split_per_user(train, evaluation.test_fraction, "random", evaluation.seed + 1)
    fit_part = fit_part.persist()
    now_s = end_s(fit_part)
    return Validation(fit_part, sample(truth_of(valid), settings.validation.max_users), now_s, catalogue_of(items),
                      lambda days: rebuilt_pairs(fit_part, mine, decayed_with(settings, days).events,
                                                 F.lit(now_s).cast("timestamp"),
                                                 settings.serving.repurchase.owned_events))


def tune_als(train: DataFrame, events: DataFrame, settings: Settings, items: DataFrame,
             users: DataFrame) -> TuningResult:
    """Search ALS (the configured ALS is always the first trial), then the merge weights, on validation
    (`events`: those `train` was built from, see validation_setup).

    With tuning disabled the configured ALS and weights come back unchanged, without trials.
    """
    cfg, k = settings.tuning, settings.evaluation.k
    half_life, decay = settings.outputs.popularity_half_life_days, settings.events.half_life_days
    split = validation_setup(train, events, settings, items)
    fit_part, truth, now_s, catalogue = split.fit_part, split.truth, split.now_s, split.catalogue
    popularity = decayed_popularity(fit_part, now_s, half_life).persist()
    fixed = to_arrow(other_outputs(fit_part, settings, items, users),  # the same for every trial
                     settings.spark.concurrent_actions)
    if not cfg.enabled:  # the configured model, still scored on validation: the gate needs the figures
        model = served_model({**fixed, **als_outputs(fit_part, settings.als, popularity)}, settings, catalogue)
        validation = ServedEvaluator(model, truth, settings, now_s).report(settings.serving.merge)
        fit_part.unpersist()
        popularity.unpersist()
        return TuningResult(settings.als, settings.serving.merge, half_life, decay, settings.serving.max_per_category,
                            [], validation)
    weights = settings.serving.merge
    trials: list[Trial] = []
    models: dict[int, FactorModel] = {}

    def objective(trial: optuna.Trial) -> float:
        als = settings.als.model_copy(update={
            "rank": trial.suggest_categorical("rank", cfg.rank),
            "max_iter": trial.suggest_categorical("max_iter", cfg.max_iter),
            "reg_param": trial.suggest_float("reg_param", *cfg.reg_param, log=True),
            "alpha": trial.suggest_float("alpha", *cfg.alpha, log=True),
        })
        started = time.time()
        with released_caches(train.sparkSession):  # the model is numpy now; the fit's cached blocks can go
            model = served_model({**fixed, **als_outputs(fit_part, als, popularity)}, settings, catalogue)
        score = ServedEvaluator(model, truth, settings, now_s).score(weights)["ndcg"]
        best_so_far = max((t.score for t in trials), default=-1.0)
        if score > best_so_far:
            models.clear()
            models[trial.number] = model
        trials.append(Trial(trial.number, {p: getattr(als, p) for p in TUNED}, score, time.time() - started))
        log.info("tuning trial %d/%d: %s -> served validation NDCG@%d %.4f (%.0fs)", trial.number + 1,
                 cfg.max_trials, trials[-1].params, k, score, trials[-1].seconds)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed))
    study.enqueue_trial({p: _inside(p, getattr(settings.als, p), cfg) for p in TUNED})
    study.optimize(objective, n_trials=cfg.max_trials, timeout=cfg.budget_s)
    best = settings.als.model_copy(update=study.best_params)
    model = next(iter(models.values()))
    score = max(t.score for t in trials)
    cap, score = best_cap(model, truth, settings, now_s, weights, score)
    settings = capped(settings, cap)
    for days in cfg.interaction_half_life_days:
        if days == decay:
            continue
        with released_caches(train.sparkSession):
            decayed = split.rebuild(days).persist()
            other = served_model({**fixed, **als_outputs(decayed, best, popularity)}, settings, catalogue)
        got = ServedEvaluator(other, truth, settings, now_s).score(weights)["ndcg"]
        log.info("interactions decayed with a %g-day half-life -> served validation NDCG@%d %.4f (%g days: %.4f)",
                 days, k, got, decay, score)
        if got > score:
            model, score, decay = other, got, days
    weights, half_life, cap, model = _ascend(model, truth, settings, now_s, fit_part, weights, half_life)
    validation = ServedEvaluator(model, truth, capped(settings, cap), now_s).report(weights)
    fit_part.unpersist()
    popularity.unpersist()
    log.info("tuning chose %s, interaction half-life %g d, merge %s, popularity half-life %s d, category cap %d "
             "after %d trials (served validation NDCG@%d %.4f)", study.best_params, decay, weights.model_dump(),
             half_life, cap, len(trials), k, validation["served"]["ndcg"])
    return TuningResult(best, weights, half_life, decay, cap, trials, validation)


_HALF_LIFE = "popularity_half_life_days"  # the ascent's coordinates after the merge weights
_CAP = "max_per_category"


def best_cap(model: FactorModel, truth: dict[str, set[str]], settings: Settings, now_s: float,
              weights: MergeWeights, score: float) -> tuple[int, float]:
    """The category cap of tuning.max_per_category that scores best on validation, and its score (`score`: the
    configured cap's); ties keep the configured one."""
    cap = settings.serving.max_per_category
    for other in settings.tuning.max_per_category:
        if other == cap:
            continue
        got = ServedEvaluator(model, truth, capped(settings, other), now_s).score(weights)["ndcg"]
        log.info("category cap %d -> served validation NDCG@%d %.4f", other, settings.evaluation.k, got)
        if got > score:
            cap, score = other, got
    return cap, score


def _ascend(model: FactorModel, truth: dict[str, set[str]], settings: Settings, now_s: float, fit_part: DataFrame,
            weights: MergeWeights, half_life: float) -> tuple[MergeWeights, float, int, FactorModel]:
    """Coordinate ascent from the best of the configured weights and each tuned signal alone: each merge
    weight of tuning.weights, then the popularity half-life, then the category cap (from
    serving.max_per_category), set in turn to the value of its grid that scores best (coordinate_ascent, at most
    tuning.weight_rounds passes). Ties keep the current value, so the served ranking ends at least as good on
    validation as any signal alone."""
    cfg = settings.tuning
    popular = {d: _popularity_of(model, fit_part, now_s, d) for d in {half_life, *cfg.popularity_half_life_days}}
    models = {d: dataclasses.replace(model, popularity=p) for d, p in popular.items()}
    current = models[half_life]
    score = ServedEvaluator(current, truth, settings, now_s).score(weights)["ndcg"]
    if cfg.weight_rounds > 0:
        for name in cfg.weights:
            got = ServedEvaluator(current, truth, settings, now_s).score(only(name))["ndcg"]
            if got > score:
                weights, score = only(name), got
    tuned = {name: getattr(weights, name) for name in cfg.weights}

    def served_ndcg(point: dict[str, float]) -> float:
        trial = weights.model_copy(update={n: v for n, v in point.items() if n not in (_HALF_LIFE, _CAP)})
        return ServedEvaluator(models[point[_HALF_LIFE]], truth, capped(settings, int(point[_CAP])),
                               now_s).score(trial)["ndcg"]

    cap = settings.serving.max_per_category
    grids = {**{name: cfg.weight_steps for name in cfg.weights}, _HALF_LIFE: list(models),
             _CAP: cfg.max_per_category or [cap]}
    point, score = coordinate_ascent({**tuned, _HALF_LIFE: half_life, _CAP: cap}, score, grids, served_ndcg,
                                     cfg.weight_rounds, "merge weights, popularity half-life and category cap")
    half_life, cap = point.pop(_HALF_LIFE), int(point.pop(_CAP))
    weights, current = weights.model_copy(update=point), models[half_life]
    return weights, half_life, cap, current


def coordinate_ascent(start: dict[str, float], score: float, grids: dict[str, Sequence[float]],
                      objective: Callable[[dict[str, float]], float], rounds: int, what: str
                      ) -> tuple[dict[str, float], float]:
    """Each coordinate in turn (the order of `grids`) set to the value of its grid that scores best, for at most
    `rounds` passes; (best point, its score). A pass ends the ascent when it reaches the coordinate that last
    moved without moving anything since: everything after that coordinate was already tried against the current
    values, so the rest of the pass would only score them again. Ties keep the current value."""
    point, last_changed = dict(start), None
    for round_ in range(rounds):
        before = score
        for name, grid in grids.items():
            if round_ > 0 and name == last_changed:
                log.info("%s, round %d: %s -> served validation NDCG %.4f (converged)", what, round_ + 1, point, score)
                return point, score
            for value in grid:
                if value == point[name]:
                    continue
                got = objective({**point, name: value})
                if got > score:
                    point, score, last_changed = {**point, name: value}, got, name
        log.info("%s, round %d: %s -> served validation NDCG %.4f", what, round_ + 1, point, score)
        if score <= before:
            break
    return point, score


def _popularity_of(model: FactorModel, interactions: DataFrame, now_s: float, days: float) -> np.ndarray:
    """The model's popularity column recomputed with another half-life, aligned to its items."""
    rows = decayed_popularity(interactions, now_s, days).toArrow()
    lookup = dict(zip(rows.column("item_id").to_pylist(), rows.column("popularity").to_pylist(), strict=True))
    return np.array([lookup.get(item, 0.0) for item in model.item_ids], dtype=np.float32)


def _inside(name: str, value: float, cfg: TuningConfig) -> float:
    """Clamp a configured default into the search space, so Optuna accepts it as the first trial."""
    space = getattr(cfg, name)
    if isinstance(space, list):
        return value if value in space else min(space, key=lambda v: abs(v - value))
    low, high = space
    return min(max(value, low), high)
