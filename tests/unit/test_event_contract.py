import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from recsys.contracts.events import Event

pytestmark = pytest.mark.unit

VALID = {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": "2026-11-28T10:00:00Z"}


def test_event_id_is_generated_and_wire_format_round_trips():
    event = Event.model_validate(VALID)
    assert len(event.event_id) == 32
    wire = json.loads(event.to_json())
    assert wire["ts"] == "2026-11-28T10:00:00.000Z"
    assert Event.model_validate(wire) == event


@pytest.mark.parametrize("change", [
    {"event_type": "teleport"},
    {"user_id": ""},
    {"user_id": "bad id with spaces"},
    {"item_id": "x" * 129},
    {"quantity": 0},
    {"price": -1},
    {"unexpected": 1},
])
def test_invalid_events_are_rejected(change):
    with pytest.raises(ValidationError):
        Event.model_validate({**VALID, **change})


@pytest.mark.parametrize("field", ["user_id", "item_id", "event_type"])
def test_required_fields(field):
    payload = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(ValidationError, match=field):
        Event.model_validate(payload)


def test_time_window():
    now = datetime(2026, 11, 28, tzinfo=UTC)
    event = Event.model_validate({**VALID, "ts": (now + timedelta(days=2)).isoformat()})
    with pytest.raises(ValueError, match="outside"):
        event.check_time(datetime(2000, 1, 1, tzinfo=UTC), 86400, now=now)
    Event.model_validate(VALID).check_time(datetime(2000, 1, 1, tzinfo=UTC), 86400, now=now)
