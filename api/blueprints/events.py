"""POST /v1/events: validate one event or a batch, attribute it to the lists served before, hand it to Kafka."""

import json

from flask import jsonify, request
from flask_openapi3 import APIBlueprint
from pydantic import ValidationError

from api.blueprints import resource_blueprint
from api.errors import ApiError, problems, unavailable
from api.schemas import EventBatch, EventsAccepted, error_responses, json_body, unavailable_response
from api.services import services
from recsys.config import Settings
from recsys.contracts.events import Event
from recsys.ingest.gate import IngestBusyError
from recsys.ingest.producer import EventTooLargeError, IngestUnavailableError, encode_batch
from recsys.services.attribution import attribute
from recsys.services.auth import AccessPolicy, Scope

_UNAVAILABLE = unavailable_response(
    "ingest_unavailable: the broker did not acknowledge every event (or failed just before); ingest_busy: this "
    "worker already waits on the broker for serving.ingest_slots requests and no slot came free in time "
    "(serving.ingest_queue, ingest_wait_s). Retry after Retry-After seconds")


def _parse_events(payload: object, max_batch: int) -> list[Event]:
    """All-or-nothing: every item checked strictly against the contract's JSON types (no "5" for 5)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiError(400, "empty_batch", "send one event object or a non-empty list")
    if len(items) > max_batch:
        raise ApiError(413, "batch_too_large", f"at most {max_batch} events per request")
    events, found = [], []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            found.append({"index": position, "problem": "an event must be a JSON object"})
            continue
        try:
            events.append(Event.model_validate_json(json.dumps(item), strict=True))
        except ValidationError as exc:
            found.append({"index": position, "problem": problems(exc)})
    if found:
        raise ApiError(400, "invalid_event", found)
    return events


def blueprint(settings: Settings, access: AccessPolicy) -> APIBlueprint:
    bp = resource_blueprint("events", __name__, access, scope=Scope.INGEST, url_prefix="/v1",
                            description="shoppers' events into the speed and batch layers")

    @bp.post("/events", responses={202: EventsAccepted, **error_responses(400, 413), 503: _UNAVAILABLE},
             openapi_extensions=json_body(bp, EventBatch, "one event or a list (docs/contracts.md#1-event)"))
    def post_events():
        """Accept one event or a batch; answers once the broker has acknowledged every event.

        Acknowledged events are also kept in their users' pending lists (redis.pending_max), so the shopper's
        next recommendations count them before the stream applies them; a Redis failure there only logs.

        An event on an item served to its user within experiments.attribution_window_s gets the list's
        rec_id and variant in its context (docs/contracts.md, attribution).
        """
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
        stored = attribute(svc.pseudonyms.events(events), svc.memory.get().lookup)  # rec_id, variant in context
        try:
            encoded = encode_batch(stored, cfg.max_event_bytes)  # the whole batch, before anything is sent
        except EventTooLargeError as exc:
            raise ApiError(413, "event_too_large", [{"index": exc.index, "problem": str(exc)}]) from exc
        try:
            svc.sink.check()  # an open breaker answers at once, without taking or waiting for a slot
            with svc.ingest_gate.slot():  # reads keep their threads while the broker is slow
                delivered = svc.sink.deliver(encoded)
        except IngestBusyError as exc:
            raise unavailable("ingest_busy", str(exc)) from exc
        except IngestUnavailableError as exc:
            raise unavailable("ingest_unavailable", str(exc)) from exc
        if svc.pending is not None:  # read your own writes: the shopper's next GET counts these events
            svc.pending.record(stored, delivered)
        return jsonify({"accepted": len(delivered), "event_ids": [e.event_id for e in events]}), 202

    return bp
