"""The event contract: what a shopper's event is, on the wire (Kafka JSON) and after validation.

The API validates with `Event`; the stream re-validates the same rules in Spark (recsys.speed.validation)
because anything can be written to a Kafka topic. Both read their rules from this module.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

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
