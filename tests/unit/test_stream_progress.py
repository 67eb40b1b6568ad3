"""Kafka consumer lag from a streaming progress event's offsets."""

import json

import pytest

from recsys.speed.stream import kafka_lag

pytestmark = pytest.mark.unit


def test_kafka_lag_sums_unprocessed_records_over_partitions():
    latest = json.dumps({"events": {"0": 120, "1": 40}})
    end = json.dumps({"events": {"0": 100, "1": 40}})
    assert kafka_lag(latest, end) == 20
    assert kafka_lag(latest, latest) == 0


def test_kafka_lag_is_unknown_without_offsets_and_counts_a_new_partition_from_zero():
    assert kafka_lag(None, "{}") is None and kafka_lag("", "{}") is None and kafka_lag("null", "null") is None
    assert kafka_lag(json.dumps({"events": {"0": 5, "2": 7}}), json.dumps({"events": {"0": 5}})) == 7
