"""Schemathesis fuzzes every operation of the OpenAPI document against the app on real Redis and Kafka.

Each operation gets the examples, coverage and fuzzing phases (at most `MAX_EXAMPLES` fuzzed cases):
no 5xx, status codes, content types, headers and bodies as documented, invalid input rejected, valid
input accepted, unsupported methods answered 405, and every failure a JSON `{"error", "detail"}`.
Without a published model the recommender answers an empty list, which is fine here.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import SPEC_PATH

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30
READINESS = "/readyz"
# POST /v1/events: the event contract has rules JSON Schema cannot state (ts within [events.min_ts,
# now + events.max_future_skew_s]; numbers of integer fields written as integers, since the API checks JSON
# types strictly), so a schema-valid event may rightly get 400. Every other check still runs on it.
# GET /readyz answers 503 (a documented readiness report, not a failure) until a model is published.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({"operations": [
    {"include-path": "/v1/events", "include-method": "POST",
     "checks": {"positive_data_acceptance": {"enabled": False}}},
    {"include-path": READINESS, "include-method": "GET",
     "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}},
]})


@pytest.fixture
def api_schema(api_client):
    return schemathesis.openapi.from_wsgi(SPEC_PATH, api_client.application, config=CONFIG)


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
