"""API-key checks for blueprints; the key logic itself is recsys.services.auth.

`require_key(scopes)` is a blueprint `before_request` (api.blueprints.resource_blueprint installs it): the
request's endpoint has a scope; a request without a valid key gets 401 `unauthorized` with
`WWW-Authenticate`, one whose key opens only other scopes gets 403 `forbidden`. In open mode a scope without
keys lets every request pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
                     "description": "an API key of the endpoint's scope (auth.scopes: read, ingest, catalogue, "
                                    "user_data, admin)"},
    BEARER_SCHEME: {"type": "http", "scheme": "bearer",
                    "description": "the same API key sent as `Authorization: Bearer <key>`"},
}
# Either scheme satisfies an operation.
SECURITY_REQUIREMENT: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}, {BEARER_SCHEME: []}]


def access_policy() -> AccessPolicy:
    return current_app.extensions[AUTH_EXTENSION]


def require_key(default: Scope, by_view: Mapping[str, Scope] | None = None) -> Callable[[], None]:
    """A before_request hook: 401/403 unless the request sends a key of its view's scope (`by_view`, by view
    function name; `default` for the others), or that scope is open."""
    by_view = dict(by_view or {})

    def check_key() -> None:
        policy = access_policy()
        scope = by_view.get((request.endpoint or "").rpartition(".")[2], default)
        if policy.is_open(scope):
            return
        key = presented_key(request.headers)
        if policy.allows(scope, key):
            return
        if key is None:
            raise ApiError(401, "unauthorized", "send an API key as X-API-Key or Authorization: Bearer",
                           {"WWW-Authenticate": CHALLENGE})
        if policy.scopes_of(key):
            raise ApiError(403, "forbidden", f"the API key does not open scope '{scope}'")
        raise ApiError(401, "unauthorized", "the API key is not valid", {"WWW-Authenticate": CHALLENGE})

    return check_key
