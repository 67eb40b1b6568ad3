import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from recsys.contracts.redis_keys import RedisKeys, decode_served, encode_served
from recsys.contracts.served import REQUIRED_FIELDS, ServedRecommendation
from recsys.contracts.tables import RECOMMENDATIONS_SERVED, SERVED_PAYLOAD_DDL, USER_DATA_TABLES, TableSpec

pytestmark = pytest.mark.unit

VALID = {"user_id": "u1", "experiment": "exp-1", "variant": "control", "model_version": "2026-11-28.1",
         "item_ids": ["i3", "i1", "i2"], "ts": "2026-11-28T10:00:00.123456Z"}


def test_wire_format_round_trips_with_the_events_timestamp_format():
    served = ServedRecommendation.model_validate(VALID)
    assert len(served.rec_id) == 32
    wire = json.loads(served.to_json())
    assert wire["ts"] == "2026-11-28T10:00:00.123Z" and wire["item_ids"] == ["i3", "i1", "i2"]
    again = ServedRecommendation.model_validate(wire)
    assert again.rec_id == served.rec_id and again.ts == datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)


def test_no_model_version_is_left_out_of_the_wire():
    wire = json.loads(ServedRecommendation.model_validate({**VALID, "model_version": None}).to_json())
    assert "model_version" not in wire and set(REQUIRED_FIELDS) <= set(wire)


@pytest.mark.parametrize("change", [
    {"user_id": "a b"}, {"variant": "x|y"}, {"item_ids": ["ok", "not ok"]}, {"experiment": ""},
    {"model_version": "v 1"}, {"extra": 1},
])
def test_invalid_records_are_rejected(change):
    with pytest.raises(ValidationError):
        ServedRecommendation.model_validate({**VALID, **change})


def test_the_spark_payload_schema_has_every_field_of_the_model():
    payload = TableSpec("payload", SERVED_PAYLOAD_DDL)
    assert payload.columns == list(ServedRecommendation.model_fields)
    assert RECOMMENDATIONS_SERVED.columns[:len(payload.columns)] == payload.columns
    assert RECOMMENDATIONS_SERVED in USER_DATA_TABLES  # forgetting a user deletes what was served to them


def test_attribution_values_and_the_served_key_are_part_of_forgetting_a_user():
    assert decode_served(encode_served("r1", "control", 1700000000.9)) == ("r1", "control", 1700000000)
    assert decode_served(b"r1|control|1700000000") == ("r1", "control", 1700000000)
    for bad in (None, b"", "r1|control", "r1||5", "r1|v|soon"):
        assert decode_served(bad) is None
    keys = RedisKeys("p")
    assert keys.served("u1") == "p:user:u1:served" and keys.served("u1") in keys.user_keys("u1")
