"""A shopper's list served under their A/B variant, and the record kept of it.

For every list: the user's variant (recsys.serving.experiments.assign_variant, on the id as stored), served
with the variant's merge weights and pinned model version; then the record (recsys.contracts.served) goes to
the recorder (Kafka, never waits) and to the attribution memory (Redis, best effort, bounded in users; the
API's memory only queues it for a writer thread); an empty list is not recorded. Neither record can fail or
slow the request; what they lose is counted by the recorder and the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from recsys.config import ExperimentsConfig, MergeWeights
from recsys.contracts.served import ServedRecommendation
from recsys.ingest.served_recorder import ServedRecorder
from recsys.serving.experiments import assign_variant, experiment_name, merge_weights
from recsys.serving.results import RecommendationQuery, Recommendations


class ServingRecommender(Protocol):
    def recommend(self, user_id: str, query: RecommendationQuery) -> Recommendations: ...


class ServedMemory(Protocol):
    def remember(self, served: ServedRecommendation) -> bool: ...


@dataclass(frozen=True)
class ServedList:
    recommendations: Recommendations
    experiment: str
    variant: str
    rec_id: str  # the record's id: events on the list's items carry it (context.rec_id)


def serve_list(user_id: str, query: RecommendationQuery, cfg: ExperimentsConfig, base: MergeWeights,
               recommender_for: Callable[[str | None], ServingRecommender], recorder: ServedRecorder,
               memory: ServedMemory) -> ServedList:
    """Serve `user_id` (the id as stored: the pseudonym when privacy.pseudonymise is on) under their variant,
    record the list and remember it for attribution. `recommender_for(version)` serves a pinned model
    version (None: the current model)."""
    variant = assign_variant(user_id, cfg)
    # A variant without overrides serves the model version's own tuned weights (the recommender's default).
    weighted = replace(query, weights=merge_weights(base, variant)) if variant.merge else query
    answer = recommender_for(variant.model_version).recommend(user_id, weighted)
    served = ServedRecommendation(user_id=user_id, experiment=experiment_name(cfg), variant=variant.name,
                                  model_version=answer.model_version, item_ids=[i.item_id for i in answer.items])
    if served.item_ids:  # an empty list (no model yet) is nothing to attribute or count
        recorder.record(served)
        memory.remember(served)
    return ServedList(answer, served.experiment, served.variant, served.rec_id)
