"""PUT /v1/users, GET /v1/users/<user_id>/history and DELETE /v1/users/<user_id>: a shopper's data."""

from dataclasses import asdict

import redis
from flask import jsonify
from flask_openapi3 import APIBlueprint

from api.blueprints import resource_blueprint
from api.errors import unavailable
from api.schemas import (
    COMMIT_CONFLICT_RESPONSE,
    ForgetResponse,
    HistoryResponse,
    UpsertResponse,
    error_responses,
    history_query,
    unavailable_response,
    user_path,
    user_rows,
)
from api.services import services
from recsys.config import Settings
from recsys.services.auth import AccessPolicy, Scope
from recsys.services.user_data import HistoryUnavailableError
from recsys.stores.delta_rs import CommitConflictError

HISTORY_UNAVAILABLE = unavailable_response("history_unavailable: neither Redis nor the lake could be read")
ERASURE_INCOMPLETE = unavailable_response(
    "erasure_incomplete: forgetting the user did not finish (Redis or a Delta commit failed); every step is "
    "idempotent, so retry after Retry-After seconds")


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("users", __name__, access, scope=Scope.USER_DATA, url_prefix="/v1",
                            description="shoppers' attributes, history and erasure")
    user_path_model = user_path(settings.serving.max_id_length)
    query_model = history_query(settings)
    rows_model = user_rows(settings.delta_rs.max_upsert_rows)

    @bp.put("/users", responses={200: UpsertResponse, **error_responses(400), 503: COMMIT_CONFLICT_RESPONSE})
    def put_users(body: rows_model):
        """Insert or replace users' attributes (the `users` table), which define cold-start segments."""
        svc = services()
        try:
            counts = svc.attributes.upsert_users(svc.pseudonyms.user_rows(body.root))
        except CommitConflictError as exc:
            raise unavailable("commit_conflict", str(exc)) from exc
        return jsonify(asdict(counts))

    @bp.get("/users/<user_id>/history",
            responses={200: HistoryResponse, **error_responses(400, 404), 503: HISTORY_UNAVAILABLE})
    def user_history(path: user_path_model, query: query_model):  # models built from the settings
        """What is held on the shopper: the speed layer's state and, with limit > 0, their newest events.

        One source down makes the answer degraded (`unavailable` names it); 503 when every source asked for failed.
        """
        svc = services()
        try:
            history = svc.user_data.history(svc.pseudonyms.user_id(path.user_id), query.limit)
        except HistoryUnavailableError as exc:
            raise unavailable("history_unavailable", str(exc)) from exc
        return jsonify({**history.to_dict(), "user_id": path.user_id})  # the caller's id, not the pseudonym

    @bp.delete("/users/<user_id>",
               responses={200: ForgetResponse, **error_responses(400, 404), 503: ERASURE_INCOMPLETE})
    def forget_user(path: user_path_model):
        """Forget the shopper: the erasure is recorded, then their Redis keys and Delta rows are deleted."""
        svc = services()
        try:
            removed = svc.user_data.forget_user(svc.pseudonyms.user_id(path.user_id))
        except (redis.RedisError, CommitConflictError) as exc:
            raise unavailable("erasure_incomplete", f"{type(exc).__name__}: {exc}") from exc
        return jsonify({"user_id": path.user_id, **removed})

    return bp
