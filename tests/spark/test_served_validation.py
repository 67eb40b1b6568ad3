"""The stream's rules for served-recommendation records, on a static frame shaped like Kafka records."""

import json
from datetime import UTC, datetime

import pytest

from recsys.contracts.served import ServedRecommendation
from recsys.speed.served import parse_served_records, valid_served
from recsys.speed.validation import quarantined

pytestmark = pytest.mark.spark

GOOD = json.loads(ServedRecommendation(rec_id="r1", user_id="u1", experiment="exp", variant="control",
                                       model_version="2026-11-01.1", item_ids=["i2", "i1"],
                                       ts=datetime(2026, 11, 1, 10, tzinfo=UTC)).to_json())


def _kafka_rows(spark, values):
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [(v if isinstance(v, bytes) else v.encode(), "t-served", 0, offset, now) for offset, v in enumerate(values)]
    return spark.createDataFrame(rows, "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP")


def test_each_bad_served_record_is_quarantined_with_its_reason(spark, settings):
    cases = {
        "ok": json.dumps(GOOD),
        "ok-no-model": json.dumps({k: v for k, v in GOOD.items() if k != "model_version"}),
        "ok-empty-list": json.dumps({**GOOD, "item_ids": []}),
        "not_json": "{not json",
        "array": json.dumps([GOOD]),
        "binary": b"\xff\xfe\x00",
        "missing_field:rec_id": json.dumps({k: v for k, v in GOOD.items() if k != "rec_id"}),
        "missing_field:item_ids": json.dumps({k: v for k, v in GOOD.items() if k != "item_ids"}),
        "bad_id": json.dumps({**GOOD, "item_ids": ["i1", "has space"]}),
        "bad_id-null-item": json.dumps({**GOOD, "item_ids": ["i1", None]}),
        "bad_id-version": json.dumps({**GOOD, "model_version": "v 1"}),
        "absurd_ts": json.dumps({**GOOD, "ts": "1970-01-01T00:00:00Z"}),
    }
    parsed = parse_served_records(_kafka_rows(spark, list(cases.values())), settings)
    got = {r["kafka_offset"]: r["detail"] for r in quarantined(parsed).collect()}
    expected = {"array": "not_json", "binary": "not_json", "bad_id-null-item": "bad_id", "bad_id-version": "bad_id"}
    assert got == {i: expected.get(name, name) for i, name in enumerate(cases) if not name.startswith("ok")}
    assert {r["kafka_topic"] for r in quarantined(parsed).collect()} == {"t-served"}
    valid = {r["kafka_offset"]: r for r in valid_served(parsed).collect()}
    assert set(valid) == {0, 1, 2}
    assert valid[0]["item_ids"] == ["i2", "i1"] and valid[0]["model_version"] == "2026-11-01.1"
    assert valid[1]["model_version"] is None and valid[2]["item_ids"] == []
    assert str(valid[0]["served_date"]) == "2026-11-01"
