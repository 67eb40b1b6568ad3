"""One shopper's events travel API -> Kafka -> stream -> Delta/Redis and change their recommendations."""

import uuid

import pytest

from recsys.batch.backfill import append_events
from recsys.batch.stages import run_all
from tests.integration.conftest import run_stream_once, topic_of_its_own
from tests.shop_data import two_taste_events

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.spark]


@pytest.fixture
def own_stack(own_lake, redis_client):
    """A lake and topic of this test's own: the model it publishes must not outrank the batch tests' run dates."""
    from api import create_app

    with topic_of_its_own(own_lake, "test-e2e") as (settings, _):
        app = create_app(settings)
        app.testing = True
        yield settings, app.test_client()


def test_posted_events_change_recommendations(spark, own_stack):
    settings, api_client = own_stack
    append_events(spark, settings, two_taste_events())
    lenient = settings.model_copy(update={  # the gate and tuning are tested elsewhere: publish the configured merge
        "gate": settings.gate.model_copy(update={"max_regression": 1.0, "baseline_margin": -1.0}),
        "tuning": settings.tuning.model_copy(update={"enabled": False})})
    model = run_all(spark, lenient, "2026-11-03")[-1]
    assert model.status == "published", model.detail
    user = f"shopper-{uuid.uuid4().hex[:8]}"

    before = api_client.get(f"/v1/users/{user}/recommendations?k=4").json
    assert before["model_version"] == model.model_version
    assert [i["reasons"] for i in before["items"]] == [["popular"]] * 4

    views = [{"user_id": user, "item_id": item, "event_type": "view"} for item in ("b1", "b2", "b3")]
    buy = {"user_id": user, "item_id": "b5", "event_type": "purchase"}
    assert api_client.post("/v1/events", json=[*views, buy]).status_code == 202
    run_stream_once(spark, settings)

    after = api_client.get(f"/v1/users/{user}/recommendations?k=4").json
    assert after["items"] != before["items"]
    ids = [i["item_id"] for i in after["items"]]
    assert all(i.startswith("b") for i in ids), ids
    assert "b5" not in ids  # bought: excluded
    assert any(r.startswith("because you viewed b") for i in after["items"] for r in i["reasons"])
