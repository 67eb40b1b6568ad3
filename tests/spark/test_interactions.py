"""Interactions de-duplicate events by (user_id, event_id): ids are the clients', unique per shopper only."""

from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from recsys.batch.interactions import build_interactions
from recsys.config import load_settings
from tests.shop_data import START

pytestmark = pytest.mark.spark
EVENTS = load_settings("test", environ={}).events


def test_two_shoppers_sending_the_same_event_id_both_count_and_a_retry_counts_once(spark):
    events = spark.createDataFrame(
        [("1", "alice", "i1", "view", START), ("1", "bob", "i1", "view", START),  # two clients' own id "1"
         ("2", "alice", "i2", "view", START), ("2", "alice", "i2", "view", START + timedelta(seconds=5))],  # retry
        "event_id STRING, user_id STRING, item_id STRING, event_type STRING, ts TIMESTAMP").withColumn(
        "quantity", F.lit(1))
    rows = build_interactions(events, EVENTS, F.lit(START).cast("timestamp")).collect()
    strengths = {(r["user_id"], r["item_id"]): r["strength"] for r in rows}
    assert set(strengths) == {("alice", "i1"), ("bob", "i1"), ("alice", "i2")}
    assert strengths[("alice", "i2")] == pytest.approx(EVENTS.weights["view"], rel=1e-3)  # once, not twice
