"""Schemathesis fuzzes every operation of the OpenAPI document against the app on real Redis and Kafka, with a
synthetic model published (delta-rs, no Spark) into this module's own Delta root.

Each operation gets the examples, coverage and fuzzing phases (at most `MAX_EXAMPLES` fuzzed cases):
no 5xx, status codes, content types, headers and bodies as documented, invalid input rejected, valid
input accepted, unsupported methods answered 405, and every failure a JSON `{"error", "detail"}`.
The write endpoints (PUT items/users, DELETE user, activate) run against this module's lake only; the
API runs open (test environment), so the key-guarded endpoints are fuzzed too.
"""

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import SPEC_PATH, create_app
from recsys.demo.synthetic_model import make_model, publish_model
from recsys.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30
READINESS = "/readyz"
ROLE_READINESS = "/readyz/{role}"
MODEL = {"version": "2026-01-01.1", "n_users": 100, "n_items": 200, "rank": 8, "n_categories": 5}
# POST /v1/events: the event contract has rules JSON Schema cannot state (ts within [events.min_ts,
# now + events.max_future_skew_s]; numbers of integer fields written as integers, since the API checks JSON
# types strictly), so a schema-valid event may rightly get 400. Every other check still runs on it.
# GET /readyz and /readyz/<role> answer 503 (a documented readiness report, not a failure) when a dependency is down.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({"operations": [
    {"include-path": "/v1/events", "include-method": "POST",
     "checks": {"positive_data_acceptance": {"enabled": False}}},
    {"include-path": READINESS, "include-method": "GET",
     "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}},
    {"include-path": ROLE_READINESS, "include-method": "GET",
     "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}},
]})


@pytest.fixture(scope="module")
def published_app(settings, topics, redis_client, tmp_path_factory):
    """The API on its own Delta root (a published synthetic model), Redis namespace and events topic: fuzzed
    events (any ts since events.min_ts) must never reach the stream and the batch-layer tests' bronze."""
    root = tmp_path_factory.mktemp("fuzz") / "delta"
    tag = uuid.uuid4().hex[:6]
    lake = settings.model_copy(update={
        "storage": settings.storage.model_copy(update={"delta_root": str(root)}),
        "redis": settings.redis.model_copy(update={"key_prefix": f"{settings.redis.key_prefix}:f{tag}"}),
        "kafka": settings.kafka.model_copy(update={"events_topic": f"{settings.kafka.events_topic}-fuzz{tag}"})})
    ensure_topics(lake)
    publish_model(lake, make_model(**MODEL))
    app = create_app(lake)
    app.testing = True
    return app


@pytest.fixture
def api_schema(published_app):
    return schemathesis.openapi.from_wsgi(SPEC_PATH, published_app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


def errors_are_json(ctx, response, case) -> None:
    """Every 4xx/5xx is JSON `{"error": <code>, "detail": ...}`, whatever the operation documents."""
    if response.status_code < 400 or case.operation.path == READINESS:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} answered {content_type}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and "detail" in body, body


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_document(case):
    case.call_and_validate(additional_checks=[errors_are_json])
