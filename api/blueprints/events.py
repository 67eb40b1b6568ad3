"""POST /v1/events: validate one event or a batch and hand it to Kafka."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from pydantic import ValidationError

from api.errors import ApiError
from api.services import services
from recsys.contracts.events import Event
from recsys.ingest.producer import IngestUnavailableError

bp = Blueprint("events", __name__, url_prefix="/v1")
RETRY_AFTER_S = "5"


def _parse_events(payload: object, max_batch: int) -> list[Event]:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiError(400, "empty_batch", "send one event object or a non-empty list")
    if len(items) > max_batch:
        raise ApiError(413, "batch_too_large", f"at most {max_batch} events per request")
    events, problems = [], []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append({"index": position, "problem": "an event must be a JSON object"})
            continue
        try:
            events.append(Event.model_validate(item))
        except ValidationError as exc:
            problems.append({"index": position, "problem": [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]})
    if problems:
        raise ApiError(400, "invalid_event", problems)
    return events


@bp.post("/events")
def post_events():
    svc = services()
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError(400, "invalid_json", "the body must be JSON (Content-Type: application/json)")
    events = _parse_events(payload, svc.settings.events.max_batch)
    cfg = svc.settings.events
    for position, event in enumerate(events):
        try:
            event.check_time(cfg.min_ts, cfg.max_future_skew_s)
        except ValueError as exc:
            raise ApiError(400, "invalid_event", [{"index": position, "problem": str(exc)}]) from exc
    try:
        accepted = svc.sink.send(events)
    except IngestUnavailableError as exc:
        raise ApiError(503, "ingest_unavailable", str(exc), {"Retry-After": RETRY_AFTER_S}) from exc
    return jsonify({"accepted": accepted, "event_ids": [e.event_id for e in events]}), 202
