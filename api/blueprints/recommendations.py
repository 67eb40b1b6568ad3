"""GET /v1/users/<user_id>/recommendations."""

from __future__ import annotations

import re
from dataclasses import asdict

from flask import Blueprint, jsonify, request

from api.errors import ApiError
from api.services import services
from recsys.contracts.events import ID_PATTERN

bp = Blueprint("recommendations", __name__, url_prefix="/v1")
_ID = re.compile(ID_PATTERN)


def _k(default: int, maximum: int) -> int:
    raw = request.args.get("k", default)
    try:
        k = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_parameter", f"k must be an integer, got {raw!r}") from None
    if not 1 <= k <= maximum:
        raise ApiError(400, "invalid_parameter", f"k must be between 1 and {maximum}")
    return k


@bp.get("/users/<user_id>/recommendations")
def user_recommendations(user_id: str):
    svc = services()
    if len(user_id) > svc.settings.serving.max_id_length or not _ID.match(user_id):
        raise ApiError(400, "invalid_user_id", f"user ids match {ID_PATTERN} and are at most "
                       f"{svc.settings.serving.max_id_length} characters")
    k = _k(svc.settings.serving.default_k, svc.settings.serving.max_k)
    attributes = _attributes(svc.settings.outputs.segment_attributes, svc.settings.serving.max_id_length)
    return jsonify(asdict(svc.recommender.recommend(user_id, k, attributes)))


def _attributes(names: list[str], max_length: int) -> dict[str, str]:
    """Optional user attributes (e.g. ?age_band=25-34&gender=f) that pick cold-start recommendations."""
    out = {}
    for name in names:
        value = request.args.get(name)
        if value is None:
            continue
        if not value.strip() or len(value) > max_length:
            raise ApiError(400, "invalid_parameter", f"{name} must be 1 to {max_length} characters")
        out[name] = value
    return out
