"""API-key checks for blueprints; the key logic itself is recsys.services.auth.

`require_key(scope)` is a blueprint `before_request` (api.blueprints.resource_blueprint installs it):
a request without a valid key for the scope gets 401 `unauthorized` with `WWW-Authenticate`. When the
scope has no keys (allowed in the local and test environments only) every request passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request

from api.errors import ApiError
from recsys.services.auth import API_KEY_HEADER, AccessPolicy, Scope, presented_key

AUTH_EXTENSION = "recsys.auth"
CHALLENGE = 'Bearer realm="recsys"'

API_KEY_SCHEME = "ApiKeyHeader"
BEARER_SCHEME = "BearerKey"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": API_KEY_HEADER,
                     "description": "an API key (RECSYS_API_KEYS; RECSYS_INGEST_KEYS also opens POST /v1/events)"},
    BEARER_SCHEME: {"type": "http", "scheme": "bearer",
                    "description": "the same API key sent as `Authorization: Bearer <key>`"},
}
# Either scheme satisfies an operation.
SECURITY_REQUIREMENT: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}, {BEARER_SCHEME: []}]


def access_policy() -> AccessPolicy:
    return current_app.extensions[AUTH_EXTENSION]


def require_key(scope: Scope) -> Callable[[], None]:
    """A before_request hook: 401 unless the request sends a key of `scope` (or the scope is open)."""

    def check_key() -> None:
        policy = access_policy()
        if policy.is_open(scope):
            return
        key = presented_key(request.headers)
        if not policy.allows(scope, key):
            detail = ("send an API key as X-API-Key or Authorization: Bearer" if key is None
                      else "the API key is not valid for this endpoint")
            raise ApiError(401, "unauthorized", detail, {"WWW-Authenticate": CHALLENGE})

    return check_key
