"""ALS training end to end on real Delta tables, then serving reads the published version."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from recsys.batch.backfill import append_events
from recsys.batch.registry import activate, list_versions
from recsys.batch.training import train_and_publish
from recsys.contracts import model_version as mv
from recsys.serving.recommender import Recommender
from recsys.stores.model_store import DeltaModelStore

pytestmark = pytest.mark.spark


def two_taste_events() -> pd.DataFrame:
    """Users 0-19 buy from the a* items, users 20-39 from the b* items."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for u in range(40):
        group = "a" if u < 20 else "b"
        for i in range(8):
            if (u + i) % 4 == 0:  # leave gaps to recommend
                continue
            rows.append({"event_id": f"e{u}-{i}", "user_id": f"u{u}", "item_id": f"{group}{i}",
                         "event_type": "purchase" if i % 2 else "view", "quantity": 1,
                         "ts": start + timedelta(minutes=u * 10 + i)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained(spark, settings):
    events = two_taste_events()
    append_events(spark, settings, events)
    append_events(spark, settings, events)  # a repeated load adds nothing
    return train_and_publish(spark, settings, "2026-11-02")


def test_model_is_trained_registered_and_published(trained, spark, settings):
    assert trained.status == mv.PUBLISHED, trained.reason
    assert set(trained.metrics) == {"als", "popularity", "item_knn"}
    assert trained.metrics["als"]["ndcg"] > trained.metrics["popularity"]["ndcg"]
    assert (trained.n_users, trained.n_items) == (40, 16)
    assert trained.n_interactions == len(two_taste_events())
    versions = {r["model_version"]: r for r in list_versions(spark, settings)}
    assert versions[trained.model_version]["status"] == mv.PUBLISHED
    assert versions[trained.model_version]["published_at"] is not None


def test_serving_loads_current_version_and_ranks_by_taste(trained, settings):
    store = DeltaModelStore(settings)
    assert store.current_version() == trained.model_version
    model = store.load(trained.model_version)
    assert model.user_factors.shape == (40, settings.als.rank)
    assert model.item_factors.shape == (16, settings.als.rank)

    class NoState:
        def recent_items(self, user_id, limit):
            return []

        def purchased(self, user_id):
            return set()

    recs = Recommender(lambda: model, NoState(), settings.serving).recommend("u0", 4)
    assert [i.item_id[0] for i in recs.items] == ["a"] * 4
    recs = Recommender(lambda: model, NoState(), settings.serving).recommend("u25", 4)
    assert [i.item_id[0] for i in recs.items] == ["b"] * 4


def test_gate_refuses_a_bad_model_and_rollback_restores_an_older_one(trained, spark, settings):
    strict = settings.model_copy(update={"gate": settings.gate.model_copy(update={"min_ndcg": 1.0})})
    refused = train_and_publish(spark, strict, "2026-11-02")
    assert refused.status == mv.REJECTED and "floor" in refused.reason
    store = DeltaModelStore(settings)
    assert store.current_version() == trained.model_version  # serving keeps the old model

    activate(spark, settings, refused.model_version)  # roll forward by hand...
    assert store.current_version() == refused.model_version
    activate(spark, settings, trained.model_version)  # ...and back
    assert store.current_version() == trained.model_version
