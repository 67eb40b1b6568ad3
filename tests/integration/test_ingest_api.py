"""POST /v1/events on a real broker: valid events are acknowledged and land in the topic."""

import json
import uuid

import pytest
from confluent_kafka import Consumer

pytestmark = pytest.mark.integration


def _consume(settings, n: int, timeout_s: float = 20.0) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.kafka.events_topic])
    out = []
    try:
        for msg in iter(lambda: consumer.poll(timeout_s), None):
            if msg.error() is None:
                out.append(json.loads(msg.value()))
            if len(out) >= n:
                break
    finally:
        consumer.close()
    return out


def test_valid_batch_is_acknowledged_and_produced(api_client, settings):
    marker = uuid.uuid4().hex[:10]
    events = [{"user_id": f"ingest-{marker}", "item_id": f"i{n}", "event_type": "view"} for n in range(3)]
    response = api_client.post("/v1/events", json=events)
    assert response.status_code == 202, response.json
    assert response.json["accepted"] == 3
    seen = [e for e in _consume(settings, 1000, timeout_s=5.0) if e["user_id"] == f"ingest-{marker}"]
    assert sorted(e["event_id"] for e in seen) == sorted(response.json["event_ids"])


@pytest.mark.parametrize(("body", "content_type", "status", "error"), [
    (b"{not json", "application/json", 400, "invalid_json"),
    (json.dumps({"item_id": "i1", "event_type": "view"}).encode(), "application/json", 400, "invalid_event"),
    (json.dumps({"user_id": "u", "item_id": "i1", "event_type": "teleport"}).encode(), "application/json",
     400, "invalid_event"),
    (json.dumps({"user_id": "u", "item_id": "i", "event_type": "view", "ts": "1999-01-01T00:00:00Z"}).encode(),
     "application/json", 400, "invalid_event"),
    (json.dumps([]).encode(), "application/json", 400, "empty_batch"),
    (json.dumps([1, 2]).encode(), "application/json", 400, "invalid_event"),
    (b"x" * (10 * 1024 * 1024), "application/json", 413, "request_entity_too_large"),
])
def test_bad_input_gets_4xx_with_reason(api_client, body, content_type, status, error):
    response = api_client.post("/v1/events", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.json["detail"]


def test_missing_user_id_names_the_field(api_client):
    response = api_client.post("/v1/events", json={"item_id": "i1", "event_type": "view"})
    fields = [p["field"] for p in response.json["detail"][0]["problem"]]
    assert "user_id" in fields


def test_too_many_events_in_one_batch(api_client, settings):
    batch = [{"user_id": "u", "item_id": "i", "event_type": "view"}] * (settings.events.max_batch + 1)
    response = api_client.post("/v1/events", json=batch)
    assert response.status_code == 413 and response.json["error"] == "batch_too_large"


@pytest.mark.parametrize("path", ["/v1/users/bad%20id/recommendations", "/v1/users/u1/recommendations?k=0",
                                  "/v1/users/u1/recommendations?k=abc", "/v1/users/u1/recommendations?k=100000",
                                  "/v1/users/u1/recommendations?gender=",
                                  f"/v1/users/u1/recommendations?age_band={'9' * 200}"])
def test_bad_recommendation_requests_get_400(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 400 and response.json["detail"]


def test_unknown_route_is_json_404(api_client):
    response = api_client.get("/nope")
    assert response.status_code == 404 and response.json["error"] == "not_found"
