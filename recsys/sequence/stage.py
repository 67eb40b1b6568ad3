"""The sequence stage of the batch DAG: between train and evaluate, for the run date's version.

It trains the next-item model on the sessions up to the run date, scores it and the merge's signals on the
newest held-out sessions, writes the weights beside the version's Delta tables and records the outcome in the
version's registry params: `params.sequence` for the report and `params.merge.sequence`, the weight serving
gives the signal (0 unless validation says it helps). Publishing or rolling back the version carries both.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from recsys import tracking
from recsys.batch import registry
from recsys.batch.als import als_checkpoints
from recsys.batch.run_data import events_up_to
from recsys.batch.stage_result import StageResult
from recsys.config import AlsConfig, MergeWeights, Settings
from recsys.contracts import model_version as mv
from recsys.sequence.pipeline import MODEL, train_and_evaluate
from recsys.sequence.report import SEQUENCE_PARAM
from recsys.sequence.sessions import TooFewSessionsError
from recsys.sequence.store import write_weights

log = logging.getLogger(__name__)


def sequence_stage(spark: SparkSession, settings: Settings, run_date: str) -> StageResult:
    """Train, evaluate and gate the version's sequence model (a retry redoes it; a decided version is left)."""
    entry = registry.latest_for_run_date(settings, run_date)
    if entry is None or entry["status"] == mv.TRAINING:
        raise LookupError(f"sequence: no trained model version for run date {run_date}; run the train stage first")
    version, params = entry["model_version"], dict(entry["params"] or {})
    if entry["status"] in mv.FINISHED:
        return StageResult("sequence", version, entry["status"], "already decided")
    merge = MergeWeights(**params["merge"]) if params.get("merge") else settings.serving.merge
    if not settings.sequence.enabled:
        params[SEQUENCE_PARAM] = {"enabled": False}
        params["merge"] = merge.model_copy(update={"sequence": 0.0}).model_dump()
        registry.update_version(settings, version, params=params)
        return StageResult("sequence", version, entry["status"], "off (sequence.enabled false)")
    als = AlsConfig(**params["als"]) if params.get("als") else settings.als
    try:
        with als_checkpoints(spark, settings):  # its baseline ALS fit: without them a long lineage overflows the stack
            outcome = train_and_evaluate(events_up_to(spark, settings, run_date), settings, als, merge)
    except TooFewSessionsError as exc:  # a young shop: serve the version without the signal, do not stop the run
        params[SEQUENCE_PARAM] = {"used": False, "weight": 0.0, "reason": f"not trained: {exc}"}
        params["merge"] = merge.model_copy(update={"sequence": 0.0}).model_dump()
        registry.update_version(settings, version, params=params)
        log.warning("no sequence model for %s: %s", version, exc)
        return StageResult("sequence", version, entry["status"], f"not trained: {exc}")
    uri = settings.sequence_path(version)
    write_weights(outcome.weights, uri)
    params[SEQUENCE_PARAM] = {**outcome.record(), "uri": uri}
    params["merge"] = merge.model_copy(update={"sequence": outcome.weight}).model_dump()
    registry.update_version(settings, version, params=params)
    tracking.log_stage(settings, version, "sequence", params={"weight": outcome.weight, "used": outcome.used},
                       metrics={"test": outcome.test, "validation": outcome.validation, **outcome.stats})
    log.info("sequence model of %s written to %s: %s", version, uri, outcome.reason)
    k = settings.evaluation.k
    return StageResult("sequence", version, entry["status"],
                       f"next-item NDCG@{k} {outcome.test[MODEL]['ndcg']:.4f}; {outcome.reason}")
