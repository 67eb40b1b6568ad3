"""ALS hyper-parameter search: Optuna's TPE sampler within a time budget, scored on a validation split.

The validation split is cut from the training split only, so the test split that evaluation reports
never influences which parameters win.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import optuna
from pyspark.sql import DataFrame

from recsys.batch.als import fit_als, recommend_all
from recsys.batch.ranking_metrics import HeldOut, score_candidates
from recsys.batch.splits import split_per_user
from recsys.config import AlsConfig, Settings, TuningConfig
from recsys.reports.evaluation_report import Trial

log = logging.getLogger(__name__)
TUNED = ("rank", "max_iter", "reg_param", "alpha")


@dataclass(frozen=True)
class TuningResult:
    best: AlsConfig
    trials: list[Trial]


def tune_als(train: DataFrame, settings: Settings) -> TuningResult:
    """Search rank, iterations, regParam and alpha; the configured ALS is always the first trial.

    With tuning disabled the configured ALS comes back unchanged and without trials.
    """
    cfg, ev = settings.tuning, settings.evaluation
    if not cfg.enabled:
        return TuningResult(settings.als, [])
    fit_part, valid = split_per_user(train, cfg.validation_fraction, ev.split, cfg.seed)
    held_out = HeldOut.build(fit_part.persist(), valid.persist(), ev.k)
    trials: list[Trial] = []

    def objective(trial: optuna.Trial) -> float:
        als = settings.als.model_copy(update={
            "rank": trial.suggest_categorical("rank", cfg.rank),
            "max_iter": trial.suggest_categorical("max_iter", cfg.max_iter),
            "reg_param": trial.suggest_float("reg_param", *cfg.reg_param, log=True),
            "alpha": trial.suggest_float("alpha", *cfg.alpha, log=True),
        })
        started = time.time()
        recs = recommend_all(fit_als(fit_part, als), held_out.fetch)
        score = score_candidates(recs, held_out)["ndcg"]
        trials.append(Trial(trial.number, {p: getattr(als, p) for p in TUNED}, score, time.time() - started))
        log.info("tuning trial %d/%d: %s -> validation NDCG@%d %.4f (%.0fs)", trial.number + 1,
                 cfg.max_trials, trials[-1].params, ev.k, score, trials[-1].seconds)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed))
    study.enqueue_trial({p: _inside(p, getattr(settings.als, p), cfg) for p in TUNED})
    study.optimize(objective, n_trials=cfg.max_trials, timeout=cfg.budget_s)
    held_out.unpersist()
    fit_part.unpersist()
    valid.unpersist()
    best = settings.als.model_copy(update=study.best_params)
    log.info("tuning chose %s after %d trials (validation NDCG@%d %.4f)", study.best_params, len(trials),
             ev.k, study.best_value)
    return TuningResult(best, trials)


def _inside(name: str, value: float, cfg: TuningConfig) -> float:
    """Clamp a configured default into the search space, so Optuna accepts it as the first trial."""
    space = getattr(cfg, name)
    if isinstance(space, list):
        return value if value in space else min(space, key=lambda v: abs(v - value))
    low, high = space
    return min(max(value, low), high)
