"""Offline evaluation of the served ranking: the serving library, run on the batch outputs of a split.

The batch outputs of the train part (recsys.batch.outputs) become a FactorModel exactly as serving
builds one from Delta (recsys.stores.model_store.model_from_tables); every held-out shopper is then
asked for through `Recommender.recommend` with no real-time state, at the split's "now". So the merge,
the repurchase policy, exclusions, filters, category cap and cold-start fallbacks that are scored are
the ones that serve. Each signal alone is the same ranking with only that signal's weight on.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys.batch.reference_metrics import coverage, mean_metrics
from recsys.config import MergeWeights, Settings
from recsys.contracts.tables import TableSpec
from recsys.serving.recommender import Recommender
from recsys.serving.results import RecommendationQuery
from recsys.spark.concurrent import concurrently
from recsys.spark.forking import forked_pool
from recsys.stores.attribute_arrays import AttributeArrays, ItemCatalogue
from recsys.stores.model_store import FactorModel, model_from_tables
from recsys.stores.online_store import ItemSignals, RealtimeState

SERVED = "served"
FULL_SCORING = "served:full"  # the same ranking with every item scored: how much two-stage retrieval loses


class NoRealtimeState:
    """The online store of an offline evaluation: the stream has seen nothing since the cut."""

    def recent_items(self, user_id: str, limit: int) -> list[str]:
        return []

    def purchased(self, user_id: str) -> set[str]:
        return set()

    def user_vector(self, user_id: str, model_version: str, rank: int) -> np.ndarray | None:
        return None

    def user_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                   half_life_s: float) -> RealtimeState:
        return RealtimeState()

    def item_signals(self, item_ids: Sequence[str], co_view_k: int, trending_k: int) -> ItemSignals:
        return ItemSignals()

    def request_state(self, user_id: str, model_version: str | None, rank: int, recent_limit: int,
                      half_life_s: float, co_view_sources: int, co_view_k: int,
                      trending_k: int) -> tuple[RealtimeState, ItemSignals]:
        return RealtimeState(), ItemSignals()

    def trending(self, k: int) -> list[tuple[str, float]]:
        return []

    def ping(self) -> bool:
        return True


def catalogue_of(items: DataFrame) -> ItemCatalogue | None:
    """The latest attributes per item, as serving's model store reads them from the ITEMS table."""
    latest = F.row_number().over(Window.partitionBy("item_id").orderBy(F.col("updated_at").desc_nulls_last()))
    rows = (items.withColumn("_n", latest).where(F.col("_n") == 1).select("item_id", "category", "brand", "price")
            .toArrow())
    if rows.num_rows == 0:
        return None
    return ItemCatalogue(rows.column("item_id").to_pylist(), AttributeArrays.from_values(
        rows.column("category").to_pylist(), rows.column("brand").to_pylist(), rows.column("price").to_pylist()))


def to_arrow(outputs: dict[TableSpec, DataFrame], threads: int) -> dict[str, pa.Table]:
    """Batch outputs collected to the driver, keyed by contract table name (what model_from_tables reads),
    `threads` collects at a time (spark.concurrent_actions)."""
    return concurrently({spec.name: df.toArrow for spec, df in outputs.items()}, threads)


def served_model(outputs: dict[TableSpec, DataFrame] | dict[str, pa.Table], settings: Settings,
                 catalogue: ItemCatalogue | None, version: str = "evaluation") -> FactorModel:
    """The model serving would load had these outputs (DataFrames or collected tables) been published."""
    tables = {key: value for key, value in outputs.items() if isinstance(key, str)}
    tables.update(to_arrow({key: value for key, value in outputs.items() if not isinstance(key, str)},
                           settings.spark.concurrent_actions))
    return model_from_tables(version, tables, settings.content.num_features, catalogue)


def truth_of(held_out: DataFrame) -> dict[str, set[str]]:
    """user -> held-out items, from (user_id, item_id) rows."""
    rows = held_out.groupBy("user_id").agg(F.collect_set("item_id").alias("items")).toArrow()
    return {u: set(items) for u, items in zip(rows.column("user_id").to_pylist(), rows.column("items").to_pylist(),
                                              strict=True)}


def sample(truth: dict[str, set[str]], n: int) -> dict[str, set[str]]:
    """At most n shoppers of `truth` (0 = all), the same ones on every call: those with the smallest hash."""
    if n <= 0 or len(truth) <= n:
        return truth
    chosen = sorted(truth, key=lambda user: hashlib.blake2b(user.encode(), digest_size=8).digest())[:n]
    return {user: truth[user] for user in chosen}


def signal_key(name: str) -> str:
    """How a signal scored alone is named in metrics (apart from the Spark baselines of the same name)."""
    return f"signal:{name}"


def only(name: str) -> MergeWeights:
    """Merge weights with just one signal on: that signal alone, through the served ranking."""
    return MergeWeights(**{field: 1.0 if field == name else 0.0 for field in MergeWeights.model_fields})


@dataclass(frozen=True)
class ServedEvaluator:
    """Scores merge weights on one model and one set of held-out shoppers, as served at `now_s`.

    The shoppers are ranked by evaluation.workers forked processes (0: one per core) once there are at least
    evaluation.min_users_per_worker each: the ranking is plain Python and numpy, one shopper at a time, and
    tuning asks for it dozens of times while Spark sits idle. A forked worker shares the model's arrays
    and touches nothing of Spark."""

    model: FactorModel
    truth: dict[str, set[str]]
    settings: Settings
    now_s: float

    def rankings(self, weights: MergeWeights) -> dict[str, list[str]]:
        users = list(self.truth)
        cfg = self.settings.evaluation
        workers = min(cfg.workers or os.cpu_count() or 1, len(users) // cfg.min_users_per_worker)
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return self._rank(users, weights)
        global _FORKED
        _FORKED = (self, weights)  # what the forked workers inherit; nothing is pickled but the user ids
        try:
            with forked_pool(workers) as pool:
                parts = pool.map(_rank_forked, [users[i::workers] for i in range(workers)])
        finally:
            _FORKED = None
        ranked = {user: items for part in parts for user, items in part.items()}
        return {user: ranked[user] for user in users}

    def _rank(self, users: list[str], weights: MergeWeights) -> dict[str, list[str]]:
        recommender = Recommender(lambda: self.model, NoRealtimeState(), self.settings.serving,
                                  self.settings.outputs.segment_attributes, clock=lambda: self.now_s)
        query = RecommendationQuery(k=self.settings.evaluation.k, weights=weights, reasons=False)
        return {user: [item.item_id for item in recommender.recommend(user, query).items] for user in users}

    def score(self, weights: MergeWeights) -> dict[str, float]:
        """NDCG, precision, recall, MAP at k over the held-out shoppers, and catalogue coverage."""
        ranked = self.rankings(weights)
        out = mean_metrics(ranked, self.truth, self.settings.evaluation.k)
        out["coverage"] = coverage(ranked.values(), len(self.model.all_item_ids))
        return out

    def report(self, weights: MergeWeights) -> dict[str, dict[str, float]]:
        """The served ranking, in two-stage mode also with every item scored (serving.retrieval.mode full, the
        reference two-stage retrieval is checked against), and each configured signal alone (evaluation.signals)."""
        results = {SERVED: self.score(weights)}
        if self.settings.serving.retrieval.mode == "two_stage":
            results[FULL_SCORING] = replace(self, settings=full_scoring(self.settings)).score(weights)
        for name in self.settings.evaluation.signals:
            results[signal_key(name)] = self.score(only(name))
        return results


_FORKED: tuple[ServedEvaluator, MergeWeights] | None = None


def _rank_forked(users: list[str]) -> dict[str, list[str]]:
    evaluator, weights = _FORKED
    return evaluator._rank(users, weights)


def full_scoring(settings: Settings) -> Settings:
    """`settings` with serving.retrieval.mode full: every item scored, no candidate stage."""
    serving = settings.serving
    retrieval = serving.retrieval.model_copy(update={"mode": "full"})
    return settings.model_copy(update={"serving": serving.model_copy(update={"retrieval": retrieval})})


def best_baseline(results: dict[str, dict[str, float]]) -> tuple[str, float]:
    """The strongest single model or signal by NDCG (anything but the served ranking, in either mode)."""
    others = {name: m["ndcg"] for name, m in results.items() if name not in (SERVED, FULL_SCORING)}
    if not others:
        return "none", 0.0
    name = max(others, key=others.get)
    return name, others[name]
