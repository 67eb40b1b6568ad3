"""The realtime path's decoder accepts what the event contract accepts and skips the rest."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from recsys.config import load_settings
from recsys.speed.wire import WireDecoder

pytestmark = pytest.mark.unit
EVENTS = load_settings("test", environ={}).events
NOW = datetime.now(UTC)
GOOD = {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": NOW.isoformat()}


def decoder() -> WireDecoder:
    return WireDecoder(EVENTS.min_ts, EVENTS.max_future_skew_s)


def test_valid_events_decode_with_defaults_and_unknown_fields_ignored():
    dec = decoder()
    out = list(dec.decode([json.dumps(GOOD).encode(),
                           json.dumps({**GOOD, "quantity": 3, "session_id": "s1", "extra": "x"}).encode()]))
    assert [(e.user_id, e.item_id, e.quantity, e.session_id) for e in out] == [("u1", "i1", 1, None),
                                                                             ("u1", "i1", 3, "s1")]
    assert out[0].ts == pytest.approx(NOW.timestamp()) and dec.rejected == 0


@pytest.mark.parametrize("record", [
    b"not json", b"", None, b"\xff\xfe",
    json.dumps({k: v for k, v in GOOD.items() if k != "ts"}).encode(),
    json.dumps({**GOOD, "user_id": None}).encode(),
    json.dumps({**GOOD, "event_type": "teleport"}).encode(),
    json.dumps({**GOOD, "item_id": "bad id with spaces"}).encode(),
    json.dumps({**GOOD, "ts": (NOW - timedelta(days=365 * 40)).isoformat()}).encode(),
    json.dumps({**GOOD, "ts": (NOW + timedelta(days=30)).isoformat()}).encode(),
    json.dumps({**GOOD, "quantity": -3}).encode(),
    json.dumps({**GOOD, "price": -1.0}).encode(),
])
def test_records_the_contract_rejects_are_skipped_and_counted(record):
    dec = decoder()
    assert list(dec.decode([record])) == [] and dec.rejected == 1
