"""The event contract: what a shopper's event is, on the wire (Kafka JSON) and after validation.

The API validates with `Event`; the stream re-validates the same rules in Spark (recsys.speed.validation)
because anything can be written to a Kafka topic, and the realtime path with `wire_verdict`. All read their
rules from this module; tests/spark/test_event_parity.py holds the Python and Spark verdicts equal.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "remove_from_cart", "purchase")
EventType = Literal["view", "click", "add_to_cart", "remove_from_cart", "purchase"]

REQUIRED_FIELDS: tuple[str, ...] = ("user_id", "item_id", "event_type", "ts")
OPTIONAL_FIELDS: tuple[str, ...] = ("event_id", "session_id", "quantity", "price", "context")

# Ids are opaque strings, but bounded and free of control and separator characters so they are
# safe in Redis keys, Delta predicates and URLs.
ID_PATTERN = r"^[A-Za-z0-9_.:@\-]+$"
MAX_ID_LENGTH = 128
MAX_QUANTITY = 10_000
# `context` is free-form (campaign, page, rec_id, ...) but bounded, so one event always fits a Kafka message.
MAX_CONTEXT_ENTRIES = 32
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_VALUE_LENGTH = 1024
ContextKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTEXT_KEY_LENGTH)]
ContextValue = Annotated[str, StringConstraints(max_length=MAX_CONTEXT_VALUE_LENGTH)]


def whole_number(value: Any) -> Any:
    """A `mode="before"` validator for an int field: JSON Schema's "integer" includes 2.0, which pydantic's
    strict mode refuses; a whole float becomes an int, anything else is left for the int check to refuse.
    (A validator on the field, not an Annotated type: that would hide the field's bounds from the OpenAPI.)"""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class QuarantineReason:
    """Reasons recorded with a quarantined record; stable strings other tooling may filter on."""

    NOT_JSON = "not_json"
    MISSING_FIELD = "missing_field"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    BAD_ID = "bad_id"
    ABSURD_TS = "absurd_ts"
    BAD_QUANTITY = "bad_quantity"
    BAD_PRICE = "bad_price"


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One shopper event as accepted by POST /v1/events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_ID_LENGTH,
                          pattern=ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    event_type: EventType
    ts: datetime = Field(default_factory=utcnow)
    session_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)  # Infinity/NaN break JSON readers
    context: dict[ContextKey, ContextValue] | None = Field(default=None, max_length=MAX_CONTEXT_ENTRIES)

    _whole_quantity = field_validator("quantity", mode="before")(whole_number)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def check_time(self, min_ts: datetime, max_future_skew_s: int, now: datetime | None = None) -> None:
        """Raise ValueError when ts is before min_ts or too far in the future."""
        now = now or utcnow()
        if self.ts < min_ts.astimezone(UTC) or self.ts > now + timedelta(seconds=max_future_skew_s):
            raise ValueError(f"ts {self.ts.isoformat()} is outside the accepted range")

    def to_json(self) -> str:
        """Wire format: UTF-8 JSON, ts as ISO-8601 UTC with milliseconds."""
        payload: dict[str, Any] = self.model_dump(exclude_none=True)
        payload["ts"] = format_ts(self.ts)
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)


class WireEvent(Event):
    """An event as read back from Kafka: the same rules, but ts is required (the API always sets it)
    and unknown fields are ignored, as the stream's Spark validation ignores them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ts: datetime
    event_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


# The quarantine rules in the order the stream applies them (recsys.speed.validation): the first failing wins.
RULE_ORDER: tuple[str, ...] = (
    QuarantineReason.NOT_JSON,
    *(f"{QuarantineReason.MISSING_FIELD}:{name}" for name in REQUIRED_FIELDS),
    QuarantineReason.UNKNOWN_EVENT_TYPE,
    QuarantineReason.BAD_ID,
    QuarantineReason.ABSURD_TS,
    QuarantineReason.BAD_QUANTITY,
    QuarantineReason.BAD_PRICE,
)
_ID_FIELDS = ("event_id", "user_id", "item_id", "session_id")
_FIELD_REASONS = {"event_type": QuarantineReason.UNKNOWN_EVENT_TYPE, "quantity": QuarantineReason.BAD_QUANTITY,
                  "price": QuarantineReason.BAD_PRICE, **dict.fromkeys(_ID_FIELDS, QuarantineReason.BAD_ID)}
_TS = TypeAdapter(datetime)


def wire_verdict(raw: bytes | None, min_ts: datetime, max_future_skew_s: int,
                 now: datetime | None = None) -> tuple[WireEvent | None, str | None]:
    """(the event, None) for a valid Kafka value, else (None, the quarantine detail of the first failing rule)."""
    latest = (now or utcnow()) + timedelta(seconds=max_future_skew_s)
    try:
        ev = WireEvent.model_validate_json(raw or b"")
    except ValidationError as exc:
        return None, _first_reason(exc, raw, min_ts.astimezone(UTC), latest)
    if not min_ts.astimezone(UTC) <= ev.ts <= latest:
        return None, QuarantineReason.ABSURD_TS
    return ev, None


def _first_reason(exc: ValidationError, raw: bytes | None, min_ts: datetime, latest: datetime) -> str:
    reasons = [_reason(error) for error in exc.errors()]
    first = min(reasons, key=RULE_ORDER.index)
    if RULE_ORDER.index(first) > RULE_ORDER.index(QuarantineReason.ABSURD_TS):  # the ts rule comes before
        try:
            ts = _TS.validate_python(json.loads(raw or b"")["ts"])
            ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            if not min_ts <= ts <= latest:
                return QuarantineReason.ABSURD_TS
        except (ValueError, TypeError, KeyError, ValidationError):  # no readable ts: nothing to add
            pass
    return first


def _reason(error: Any) -> str:
    """The quarantine reason of one pydantic error; a field that does not parse counts as missing, as in
    Spark's from_json, which reads it as NULL."""
    field = error["loc"][0] if error["loc"] else None
    if field is None or error["type"] in ("json_invalid", "model_type", "model_attributes_type"):
        return QuarantineReason.NOT_JSON
    if field in REQUIRED_FIELDS and (error["type"] == "missing" or error.get("input") is None or field == "ts"):
        return f"{QuarantineReason.MISSING_FIELD}:{field}"
    return _FIELD_REASONS.get(field, QuarantineReason.NOT_JSON)


QUANTITY_MODES = ("ignore", "log", "linear")  # events.quantity


def quantity_scale(quantity: int | None, mode: str) -> float:
    """How a purchase's quantity scales its weight (events.quantity), in Python: the speed layer and the serving
    overlay; recsys.batch.interactions.quantity_factor is the same rule in Spark SQL."""
    q = max(quantity or 1, 1)
    return 1.0 if mode == "ignore" else 1.0 + math.log(q) if mode == "log" else float(q)


def event_strength(event_type: str, quantity: int | None, weights: Mapping[str, float], mode: str) -> float:
    """An event's strength: events.weights of its type, a purchase's scaled by its quantity (events.quantity)."""
    return weights.get(event_type, 0.0) * (quantity_scale(quantity, mode) if event_type == "purchase" else 1.0)
