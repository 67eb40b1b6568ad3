"""The served-recommendation contract: the record serving keeps of every list it returns, and how the
events that follow carry the recommendation they are attributed to.

A record goes to Kafka (`<kafka.events_topic>-served`, recsys.kafka.topics.served_topic) as compact
JSON keyed by user_id; the stream's bronze query lands it in the `recommendations_served` Delta table
(recsys.contracts.tables). An event attributed to a served list carries CONTEXT_REC_ID and
CONTEXT_VARIANT in its `context`; reading CTR and conversion per variant joins the two
(recsys.batch.variant_outcomes). See docs/contracts.md.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.contracts.events import ID_PATTERN, MAX_ID_LENGTH, format_ts, utcnow
from recsys.contracts.model_version import VERSION_PATTERN

# Experiment and variant recorded while experiments are off: a reserved name, never a configured one.
OFF = "off"

# Keys an attributed event gains in its `context` (Event.context).
CONTEXT_REC_ID = "rec_id"
CONTEXT_VARIANT = "variant"

# Fields a record must have; the stream quarantines one without them (missing_field:<field>).
REQUIRED_FIELDS: tuple[str, ...] = ("rec_id", "user_id", "experiment", "variant", "item_ids", "ts")

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def new_rec_id() -> str:
    return uuid.uuid4().hex


class ServedRecommendation(BaseModel):
    """One recommendation list as served: who got which items, ranked, under which variant and model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rec_id: Id = Field(default_factory=new_rec_id)
    user_id: Id  # the id as stored (the pseudonym when privacy.pseudonymise is on), as in events
    experiment: Id  # experiments.name, or OFF
    variant: Id  # the variant's name, or OFF
    model_version: str | None = Field(default=None, max_length=MAX_ID_LENGTH, pattern=VERSION_PATTERN)
    item_ids: list[Id]  # best first
    ts: datetime = Field(default_factory=utcnow)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def to_json(self) -> str:
        """Wire format: UTF-8 JSON, ts as in events (ISO-8601 UTC, milliseconds); no model_version when None."""
        payload: dict[str, Any] = self.model_dump(exclude_none=True)
        payload["ts"] = format_ts(self.ts)
        return json.dumps(payload, separators=(",", ":"))
