"""Prepare sessions, train the model on the training part, score it against the merge's signals, gate it.

One function for the batch stage and the bench, so the figures the bench prints are those the stage records.
The ALS of the baselines is fitted on the training period only (the version's own ALS has seen the held-out
sessions). What is evaluated is what is published: the model trained before the validation cut.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys.batch.als import als_factors
from recsys.batch.interactions import build_interactions
from recsys.config import AlsConfig, MergeWeights, Settings
from recsys.sequence import nextitem, train
from recsys.sequence.gru import GruWeights
from recsys.sequence.sessions import collect_sessions, session_frame, split_by_time

log = logging.getLogger(__name__)
MODEL = "sequence"
MERGED, WITH_SIGNAL = "merged", "merged+sequence"


@dataclass(frozen=True)
class SequenceOutcome:
    weights: GruWeights
    test: dict[str, dict[str, float]]  # model -> hr, ndcg, mrr (and cases) on the test sessions
    validation: dict[str, dict[str, float]]
    weight: float  # the signal's weight in the merge: the tuned one when the gate lets it in, else 0
    used: bool
    reason: str
    stats: dict[str, float]  # sessions per part, training time and epochs

    def record(self) -> dict:
        """What the registry keeps (params.sequence) and the report shows."""
        return {"used": self.used, "weight": self.weight, "reason": self.reason, "test": self.test,
                "validation": self.validation, "stats": self.stats}


def _factors(frame: DataFrame, key: str) -> dict[str, np.ndarray]:
    return {r[key]: np.asarray(r["factors"], dtype=np.float32) for r in frame.collect()}


def train_and_evaluate(events: DataFrame, settings: Settings, als: AlsConfig,
                       merge: MergeWeights) -> SequenceOutcome:
    """The whole sequence run on `events` (bronze rows): sessions, split, training, scores, gate."""
    cfg, k = settings.sequence, settings.evaluation.k
    started = time.monotonic()
    sessions = collect_sessions(session_frame(events, cfg.event_types, settings.stream.session_gap_s, cfg.min_items))
    split = split_by_time(sessions, cfg.validation_fraction, cfg.test_fraction)
    prepared_s = time.monotonic() - started
    vocabulary = sorted({item for s in split.train for item in s.items})
    row = {item: i + 1 for i, item in enumerate(vocabulary)}
    weights, stats = train.fit([np.asarray([row[i] for i in s.items], np.int64) for s in split.train],
                               vocabulary, cfg)
    log.info("sequence model: %d items, %d training windows, %d epochs in %.1f s (loss %.3f)", len(vocabulary),
             stats.windows, stats.epochs, stats.seconds, stats.loss)

    cut = F.lit(split.validation_from_s).cast("timestamp")
    interactions = build_interactions(events.where(F.col("ts") < cut), settings.events, cut,
                                      settings.serving.repurchase.owned_events).persist()
    user_factors, item_factors = als_factors(interactions, als)
    pairs = [(r["user_id"], r["item_id"]) for r in interactions.select("user_id", "item_id").collect()]
    baselines = nextitem.Baselines.build(weights, pairs, settings.evaluation.knn_neighbours,
                                         _factors(user_factors, "user_id"), _factors(item_factors, "item_id"))
    interactions.unpersist()

    scored = {}
    for part, held in (("validation", split.validation), ("test", split.test)):
        cases = nextitem.cases(held, weights, cfg.max_len, cfg.max_eval_sessions)
        signal = nextitem.sequence_scores(weights, cases)
        merged = baselines.merged(cases, merge)
        scored[part] = (cases, signal, merged, {
            MODEL: signal, "als": baselines.als(cases), "item_knn": baselines.item_knn(cases),
            "recent": baselines.recent(cases), MERGED: merged})
    cases, signal, merged, _ = scored["validation"]
    weight, by_step = nextitem.tune_weight(merged, signal, cases, [0.0, *cfg.weight_steps], k)
    results = {}
    for part, (cases, signal, merged, models) in scored.items():
        models[WITH_SIGNAL] = merged + weight * signal
        results[part] = {name: nextitem.ranking_metrics(s, cases, k) for name, s in models.items()}
    without, with_signal = results["validation"][MERGED]["ndcg"], results["validation"][WITH_SIGNAL]["ndcg"]
    used = weight > 0 and with_signal > without * (1.0 + cfg.min_gain)
    reason = (f"validation NDCG@{k} of the merged ranking {without:.4f} -> {with_signal:.4f} at weight {weight:g} "
              f"(tried {', '.join(f'{w:g}: {v:.4f}' for w, v in by_step.items())}); "
              + ("signal used" if used else f"signal off (needs a gain above {cfg.min_gain:g})"))
    return SequenceOutcome(weights, results["test"], results["validation"], weight if used else 0.0, used, reason, {
        "sessions_train": len(split.train), "sessions_validation": len(split.validation),
        "sessions_test": len(split.test), "items": len(vocabulary), "prepare_s": round(prepared_s, 1),
        "train_s": round(stats.seconds, 1), "epochs": stats.epochs, "steps": stats.steps, "loss": stats.loss,
        "total_s": round(time.monotonic() - started, 1)})
