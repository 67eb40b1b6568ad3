"""The API platform on real Redis and Kafka: OpenAPI document, JSON errors, API keys, metrics, pseudonyms."""

import json
import logging
import os
import re
import uuid
from dataclasses import replace

import pytest
import schemathesis
from confluent_kafka import Consumer

from api import DOCS_PREFIX, SPEC_PATH, create_app
from api.auth import API_KEY_SCHEME, BEARER_SCHEME
from recsys.config import ConfigError, PrivacyConfig, load_settings
from recsys.services.privacy import MIN_KEY_BYTES, PSEUDONYM_KEY_ENV, Pseudonymizer
from recsys.serving.results import Recommendations

pytestmark = pytest.mark.integration

RECS = "/v1/users/{user_id}/recommendations"
# Routes that serve the documentation itself rather than the API.
DOC_ENDPOINTS = re.compile(r"^(openapi|swagger)\.|^openapi_document$")
KEY_ENVS = ("RECSYS_API_KEYS", "RECSYS_READ_KEYS", "RECSYS_INGEST_KEYS", "RECSYS_CATALOGUE_KEYS",
            "RECSYS_USER_DATA_KEYS", "RECSYS_ADMIN_KEYS")


@pytest.fixture
def services(api_client):
    """The session app's services (real Redis, Kafka, model store), shared by the fresh apps built here."""
    return api_client.application.extensions["recsys"]


@pytest.fixture
def fresh_app(settings, services, monkeypatch):
    """Build a new app after the test has set the environment (keys are read when the app is created)."""
    for name in (*KEY_ENVS, "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)

    def build(svc=None):
        app = create_app(settings, svc or services)
        app.testing = True
        return app.test_client()

    return build


class RecordingRecommender:
    """Answers an empty list and remembers which user ids were asked for (or fails, to test the 500)."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[str] = []
        self._fail = fail

    def recommend(self, user_id, query):
        if self._fail:
            raise RuntimeError("boom")
        self.asked.append(user_id)
        return Recommendations(user_id=user_id, model_version=None, degraded=False, items=[])


def test_openapi_document_is_valid_openapi_3_and_lists_every_route(api_client):
    response = api_client.get(SPEC_PATH)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.json
    assert document["openapi"].startswith("3.")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI meta-schema
    assert api_client.get(f"{DOCS_PREFIX}{SPEC_PATH}").json == document
    for rule in api_client.application.url_map.iter_rules():
        if DOC_ENDPOINTS.search(rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path in document["paths"], rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = document["paths"][path][method.lower()]
            assert "200" in operation["responses"] or "202" in operation["responses"], (path, method)
            assert "400" in operation["responses"], (path, method)
    assert set(document["components"]["securitySchemes"]) == {API_KEY_SCHEME, BEARER_SCHEME}
    query = {p["name"] for p in document["paths"][RECS]["get"]["parameters"]}
    assert {"user_id", "k"} <= query


def test_docs_page_is_browsable(api_client):
    for path in (f"{DOCS_PREFIX}/", f"{DOCS_PREFIX}/swagger"):
        response = api_client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/html", path


@pytest.mark.parametrize(("method", "path", "status", "error"), [
    ("get", "/nope", 404, "not_found"),
    ("get", f"{DOCS_PREFIX}/nope", 404, "not_found"),
    ("delete", "/healthz", 405, "method_not_allowed"),
    ("get", "/v1/events", 405, "method_not_allowed"),
    ("get", "/v1/users/u1/recommendations?k=0", 400, "invalid_request"),
    ("get", "/v1/users/bad%20id/recommendations", 400, "invalid_request"),
])
def test_failures_are_json(api_client, method, path, status, error):
    response = getattr(api_client, method)(path)
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.json["error"] == error and response.json["detail"]
    if status == 405:
        assert "Allow" in response.headers


def test_validation_error_names_the_field(api_client):
    response = api_client.get("/v1/users/u1/recommendations?k=abc")
    assert response.status_code == 400
    assert [p["field"] for p in response.json["detail"]] == ["k"]


def test_body_over_the_limit_is_json_413(api_client, settings):
    response = api_client.post("/v1/events", data=b"x" * (settings.events.max_body_bytes + 1),
                               content_type="application/json")
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"


def test_unexpected_failure_is_json_500_without_traceback(fresh_app, services):
    client = fresh_app(replace(services, recommender=RecordingRecommender(fail=True)))
    response = client.get("/v1/users/u1/recommendations")
    assert response.status_code == 500 and response.json == {
        "error": "internal_error", "detail": "the server failed; the error was logged"}


def test_test_env_without_keys_runs_open(fresh_app, services):
    client = fresh_app(replace(services, recommender=RecordingRecommender()))
    assert client.get("/v1/users/u1/recommendations").status_code == 200
    assert client.get("/readyz").json["auth"] == "open"
    operation = client.get(SPEC_PATH).json["paths"][RECS]["get"]
    assert "security" not in operation and "401" not in operation["responses"]


def _closed(settings):
    """The settings without the open-mode opt-in (as in a deployment)."""
    return settings.model_copy(update={"auth": settings.auth.model_copy(update={"open": False})})


SCOPE_KEYS = {"RECSYS_READ_KEYS": "shop-1,shop-2", "RECSYS_INGEST_KEYS": "ingest-key",
              "RECSYS_CATALOGUE_KEYS": "pim-key", "RECSYS_USER_DATA_KEYS": "crm-key", "RECSYS_ADMIN_KEYS": "ops-key"}


@pytest.fixture
def keyed_app(settings, services, fresh_app, monkeypatch):
    for name, value in SCOPE_KEYS.items():
        monkeypatch.setenv(name, value)
    app = create_app(_closed(settings), replace(services, recommender=RecordingRecommender()))
    app.testing = True
    return app.test_client()


def test_keys_set_in_the_environment_are_required(keyed_app):
    client = keyed_app
    path = "/v1/users/u1/recommendations"
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.json["error"] == "unauthorized" and response.json["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(path, headers={"X-API-Key": "shop-2"}).status_code == 200
    assert client.get(path, headers={"Authorization": "Bearer shop-1"}).status_code == 200
    assert client.get(path, headers={"X-API-Key": "ingest-key"}).status_code == 403  # a key of another scope
    event = {"user_id": "auth-u", "item_id": "i1", "event_type": "view"}
    assert client.post("/v1/events", json=event).status_code == 401
    assert client.post("/v1/events", json=event, headers={"X-API-Key": "shop-1"}).status_code == 403
    assert client.post("/v1/events", json=event, headers={"X-API-Key": "ingest-key"}).status_code == 202
    assert client.get("/healthz").status_code == 200  # probes and scrapes stay open
    assert client.get("/metrics").status_code == 200
    assert client.get("/readyz").json["auth"] == "keys"
    operation = client.get(SPEC_PATH).json["paths"][RECS]["get"]
    assert operation["security"] == [{API_KEY_SCHEME: []}, {BEARER_SCHEME: []}]
    assert {"401", "403"} <= set(operation["responses"])


@pytest.mark.parametrize(("method", "path", "body", "scope_key"), [
    ("delete", "/v1/users/u-scope", None, "crm-key"),
    ("get", "/v1/users/u-scope/history?limit=0", None, "crm-key"),
    ("put", "/v1/users", [], "crm-key"),  # empty bodies: the shared lake's users and items stay as they are
    ("put", "/v1/items", [], "pim-key"),
    ("post", "/v1/admin/models/2099-01-01.1/activate", None, "ops-key"),
])
def test_a_storefront_key_cannot_delete_shoppers_change_the_catalogue_or_activate(keyed_app, method, path, body,
                                                                                 scope_key):
    """Issue 18 item 10: one storefront key used to open every guarded endpoint."""
    send = getattr(keyed_app, method)
    kwargs = {"json": body} if body is not None else {}
    refused = send(path, headers={"X-API-Key": "shop-1"}, **kwargs)
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    assert send(path, headers={"X-API-Key": scope_key}, **kwargs).status_code not in (401, 403)


def test_refuses_to_start_without_keys_unless_open_mode_on_loopback(settings, services, monkeypatch, caplog):
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="no API keys"):
        create_app(_closed(settings).model_copy(update={"env": "cluster"}), services)
    monkeypatch.setenv("RECSYS_READ_KEYS", "k1")
    assert create_app(_closed(settings).model_copy(update={"env": "cluster"}), services) is not None


def test_local_env_without_recsys_env_is_open_on_loopback_only(services, monkeypatch, caplog):
    """Issue 18 item 11: with no RECSYS_ENV the API ran open on whatever address it was bound to."""
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RECSYS_ENV", raising=False)
    local = load_settings(environ={k: v for k, v in os.environ.items() if k != "RECSYS_ENV"})
    assert local.env == "local"
    world = local.model_copy(update={"serving": local.serving.model_copy(update={"host": "0.0.0.0"})})
    with pytest.raises(ConfigError, match="loopback"):
        create_app(world, services)
    with caplog.at_level(logging.WARNING, logger="api.factory"):
        app = create_app(local, services)
    assert "OPEN MODE" in caplog.text and app.test_client().get("/readyz").json["auth"] == "open"


def test_metrics_show_request_latency_and_errors(fresh_app):
    client = fresh_app()
    assert client.get("/healthz").status_code == 200
    assert client.get("/nope").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'^recsys_http_request_duration_seconds_count\{endpoint="/healthz",method="GET",'
                     r'status="200"\} [1-9]', text, re.MULTILINE)
    assert re.search(r'^recsys_http_request_duration_seconds_bucket\{endpoint="/healthz"', text, re.MULTILINE)
    assert re.search(r'^recsys_http_errors_total\{endpoint="unmatched",error="not_found"\} [1-9]', text,
                     re.MULTILINE)
    assert "recsys_redis_up" in text  # the speed-layer collector is still there


def _consume_user(settings, user_id: str, timeout_s: float = 10.0) -> dict | None:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.kafka.events_topic])
    try:
        for msg in iter(lambda: consumer.poll(timeout_s), None):
            if msg.error() is None and json.loads(msg.value())["user_id"] == user_id:
                return json.loads(msg.value())
    finally:
        consumer.close()
    return None


def test_pseudonymised_ids_go_to_kafka_and_lookups(fresh_app, services, settings):
    pseudonyms = Pseudonymizer.from_config(PrivacyConfig(pseudonymise=True, pseudonym_chars=32),
                                           {PSEUDONYM_KEY_ENV: "p" * MIN_KEY_BYTES})
    recommender = RecordingRecommender()
    client = fresh_app(replace(services, pseudonyms=pseudonyms, recommender=recommender))
    user = f"pseudo-{uuid.uuid4().hex[:10]}"
    response = client.post("/v1/events", json={"user_id": user, "item_id": "i1", "event_type": "view"})
    assert response.status_code == 202
    produced = _consume_user(settings, pseudonyms.user_id(user))
    assert produced is not None and produced["event_id"] == response.json["event_ids"][0]
    answer = client.get(f"/v1/users/{user}/recommendations").json
    assert recommender.asked == [pseudonyms.user_id(user)] and answer["user_id"] == user
