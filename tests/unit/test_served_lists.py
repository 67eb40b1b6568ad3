"""Serving under an A/B variant (weights, pinned version, records), pinned models and per-process objects."""

import logging
from types import SimpleNamespace

import pytest

from api.services import PerProcess
from recsys.config import Variant, load_settings
from recsys.contracts.served import OFF, ServedRecommendation
from recsys.services.attribution import LOOKUP, REMEMBER, RedisServedMemory
from recsys.serving.experiments import assign_variant
from recsys.serving.model_cache import PinnedModel
from recsys.serving.results import RecommendationQuery, Recommendations, ScoredItem
from recsys.serving.served_lists import serve_list
from tests.unit.serving_fakes import DownRedis

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test", environ={})


class FakeRecommender:
    def __init__(self, version: str | None) -> None:
        self.version, self.queries = version, []

    def recommend(self, user_id, query):
        self.queries.append(query)
        return Recommendations(user_id, self.version, False, [ScoredItem("i1", 1.0, ["popular"])])


class Recorded:
    def __init__(self) -> None:
        self.records = []

    def record(self, served) -> bool:
        self.records.append(served)
        return True

    remember = record


def test_a_list_is_served_with_the_variants_weights_and_pin_and_recorded():
    variants = [Variant(name="boost", share=0.5, merge={"recent": 0.9}),
                Variant(name="pinned", share=0.5, model_version="2026-01-01.1")]
    cfg = SETTINGS.experiments.model_copy(update={"enabled": True, "variants": variants})
    current, pinned = FakeRecommender("2026-02-01.1"), FakeRecommender("2026-01-01.1")
    users = {assign_variant(f"u{n}", cfg).name: f"u{n}" for n in range(50)}
    recorder, memory = Recorded(), Recorded()

    def recommender_for(version):
        return current if version is None else pinned

    boosted = serve_list(users["boost"], RecommendationQuery(k=3), cfg, SETTINGS.serving.merge, recommender_for,
                         recorder, memory)
    assert current.queries[0].weights.recent == 0.9
    assert current.queries[0].weights.factors == SETTINGS.serving.merge.factors
    assert (boosted.variant, boosted.experiment) == ("boost", cfg.name)
    record = recorder.records[0]
    assert memory.records == [record] and record.rec_id == boosted.rec_id and record.user_id == users["boost"]
    assert (record.item_ids, record.model_version) == (["i1"], "2026-02-01.1")

    served = serve_list(users["pinned"], RecommendationQuery(k=3), cfg, SETTINGS.serving.merge, recommender_for,
                        recorder, memory)
    assert served.recommendations.model_version == "2026-01-01.1"
    assert pinned.queries[0].weights is None  # no overrides: the pinned version's own tuned weights


def test_experiments_off_serve_everyone_the_base_weights_recorded_as_off():
    current, recorder = FakeRecommender("v1"), Recorded()
    served = serve_list("u1", RecommendationQuery(k=3), SETTINGS.experiments, SETTINGS.serving.merge,
                        lambda version: current, recorder, Recorded())
    assert (served.variant, served.experiment) == (OFF, OFF)
    assert current.queries[0].weights is None  # the recommender serves the model's tuned (else the base) weights


class Store:
    def __init__(self, fail: bool) -> None:
        self.fail, self.loads = fail, 0

    def load(self, version, extras=True):
        self.loads += 1
        if self.fail:
            raise LookupError(f"model version {version} has no item factors")
        return SimpleNamespace(version=version, item_ids=["i1"])


def test_an_unservable_pin_falls_back_to_the_current_model_and_is_logged_once(caplog):
    store = Store(fail=True)
    pinned = PinnedModel(store, "2099-01-01.1", lambda: "current model")
    with caplog.at_level(logging.WARNING):
        assert [pinned(), pinned(), pinned()] == ["current model"] * 3
    assert store.loads == 1 and len([r for r in caplog.records if "cannot be served" in r.message]) == 1
    good = Store(fail=False)
    assert PinnedModel(good, "v1", lambda: "current model")().version == "v1"


def test_per_process_objects_are_built_again_after_a_fork(monkeypatch):
    built = []
    holder = PerProcess(lambda: built.append(1) or len(built))
    assert holder.built() is None
    assert holder.get() == holder.get() == 1
    monkeypatch.setattr("os.getpid", lambda: -1)  # as seen from a forked child
    assert holder.built() is None and holder.get() == 2


def test_attribution_errors_reach_the_listener():
    seen = []
    memory = RedisServedMemory(SETTINGS.experiments, SETTINGS.redis, client=DownRedis(), listener=seen.append)
    served = ServedRecommendation(user_id="u1", experiment=OFF, variant=OFF, item_ids=["i1"])
    assert memory.remember(served) is False and memory.lookup({"u1": ["i1"]}) == {}
    assert seen == [REMEMBER, LOOKUP] and memory.errors == 2
