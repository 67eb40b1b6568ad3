"""The stream's quarantine rules on a static frame shaped like Kafka records."""

import json
from datetime import UTC, datetime

import pytest

from recsys.speed.validation import parse_kafka_records, quarantined, valid_events

pytestmark = pytest.mark.spark

GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view", "ts": "2026-11-01T10:00:00Z"}


def _kafka_rows(spark, values):
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [(v if isinstance(v, bytes) else v.encode(), "t", 0, offset, now) for offset, v in enumerate(values)]
    return spark.createDataFrame(rows, "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP")


def test_each_bad_record_is_quarantined_with_its_reason(spark, settings):
    cases = {
        "ok": json.dumps(GOOD),
        "ok-no-id": json.dumps({k: v for k, v in GOOD.items() if k != "event_id"}),
        "not_json": "{not json",
        "array": json.dumps([GOOD]),
        "missing_field:user_id": json.dumps({k: v for k, v in GOOD.items() if k != "user_id"}),
        "unknown_event_type": json.dumps({**GOOD, "event_type": "teleport"}),
        "absurd_ts": json.dumps({**GOOD, "ts": "1970-01-01T00:00:00Z"}),
        "bad_id": json.dumps({**GOOD, "item_id": "has space"}),
        "bad_quantity": json.dumps({**GOOD, "quantity": -3}),
        "binary": b"\xff\xfe\x00",
    }
    parsed = parse_kafka_records(_kafka_rows(spark, list(cases.values())), settings)
    got = {r["kafka_offset"]: r["detail"] for r in quarantined(parsed).collect()}
    expected_reason = {i: name for i, name in enumerate(cases)}
    assert got == {i: (name if name not in ("array", "binary") else "not_json")
                   for i, name in expected_reason.items() if not name.startswith("ok")}
    valid = {r["kafka_offset"]: r for r in valid_events(parsed).collect()}
    assert set(valid) == {0, 1}
    assert valid[0]["event_id"] == "e1" and valid[0]["quantity"] == 1
    assert valid[1]["event_id"] == "k-t-0-1"  # deterministic id from Kafka coordinates
    assert {r["raw"] for r in quarantined(parsed).collect()} >= {b"{not json"}
