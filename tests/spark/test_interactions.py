"""Interactions de-duplicate events by (user_id, event_id): ids are the clients', unique per shopper only."""

import math
from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from recsys.batch.interactions import build_interactions
from recsys.batch.outputs import decayed_popularity, user_history
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


def test_quantity_scales_a_weight_as_configured(spark):
    """A wholesale line of 100 counts once by default (ignore), 1 + ln 100 with log, 100 with linear."""
    events = spark.createDataFrame([("1", "u", "i", "purchase", START, 100)],
                                   "event_id STRING, user_id STRING, item_id STRING, event_type STRING, ts TIMESTAMP, "
                                   "quantity INT")
    purchase = EVENTS.weights["purchase"]
    expected = {"ignore": purchase, "log": purchase * (1 + math.log(100)), "linear": purchase * 100}
    for mode, strength in expected.items():
        cfg = EVENTS.model_copy(update={"quantity": mode})
        got = build_interactions(events, cfg, F.lit(START).cast("timestamp")).first()["strength"]
        assert got == pytest.approx(strength, rel=1e-3), mode


def test_popularity_counts_shoppers_by_when_they_first_took_an_item_up(spark):
    """'old' was taken up long ago and only re-ordered lately; 'new' was taken up lately: 'new' is popular now."""
    rows = [("a", "old", START - timedelta(days=70), START), ("b", "old", START - timedelta(days=70), START),
            ("c", "new", START - timedelta(days=1), START - timedelta(days=1))]
    interactions = spark.createDataFrame(rows, "user_id STRING, item_id STRING, first_ts TIMESTAMP, last_ts TIMESTAMP")
    got = {r["item_id"]: r["popularity"] for r in
           decayed_popularity(interactions, START.timestamp(), half_life_days=7.0).collect()}
    assert got["old"] == pytest.approx(2 * 0.5 ** 10)
    assert got["new"] == pytest.approx(0.5 ** (1 / 7))
    assert got["new"] > got["old"]


def test_history_keeps_the_newest_items_and_every_owned_one_however_old(spark):
    """A shopper's purchase older than the newest `keep` items is still theirs: the repurchase policy must see it."""
    rows = [("u", "bought-long-ago", START - timedelta(days=300), START - timedelta(days=300)),
            ("u", "viewed-long-ago", START - timedelta(days=200), None)]
    rows += [("u", f"new{n}", START - timedelta(hours=n), None) for n in range(3)]
    interactions = spark.createDataFrame(rows, "user_id STRING, item_id STRING, last_ts TIMESTAMP, owned_ts TIMESTAMP")
    kept = {r["item_id"] for r in user_history(interactions, keep=3, owned=10).collect()}
    assert kept == {"new0", "new1", "new2", "bought-long-ago"}
    assert {r["item_id"] for r in user_history(interactions, keep=3, owned=0).collect()} == {"new0", "new1", "new2"}
