"""Forgotten users stay out of training, and Spark and delta-rs share the tables the API writes.

Each test has a Delta root of its own: an erasure in the run's shared lake would change what
test_stages trains on.
"""

import os
from datetime import UTC, datetime, timedelta

import pytest

from recsys.batch import run_data
from recsys.batch.backfill import append_events, upsert_users
from recsys.batch.interactions import drop_erased
from recsys.config import load_settings
from recsys.contracts.catalogue import UserAttributes
from recsys.contracts.tables import EVENTS_BRONZE, USERS
from recsys.spark.delta import read_table
from recsys.stores.attribute_store import DeltaAttributeStore, UpsertCounts
from recsys.stores.erasure_store import DeltaErasureStore
from tests.shop_data import START, two_taste_catalogue, two_taste_events

pytestmark = pytest.mark.spark
RUN_DATE = "2026-11-02"


@pytest.fixture
def own(tmp_path):
    environ = {**os.environ, "RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta"),
               "RECSYS__STORAGE__CHECKPOINT_ROOT": str(tmp_path / "checkpoints")}
    return load_settings("test", environ=environ)


def test_drop_erased_keeps_other_users_and_events_ingested_after_the_latest_erasure(spark):
    hour = timedelta(hours=1)
    # (event_id, user_id, item_id, client ts, Kafka timestamp, ingested_at): the ingestion time decides.
    events = spark.createDataFrame(
        [("e1", "u1", "i1", START, START, START), ("e2", "u1", "i2", START, START + 2 * hour, START + 3 * hour),
         ("e3", "u1", "i3", START, START + 4 * hour, START + 4 * hour), ("e4", "u2", "i1", START, START, START),
         ("e5", "u3", "i1", START, START + 9 * hour, START + 9 * hour),
         ("e6", "u1", "i4", START + 10 * hour, START + hour, START + hour),  # future-dated, sent before erasure
         ("e7", "u1", "i5", START, None, START + 5 * hour)],  # backfilled (no Kafka): when bronze got it
        "event_id STRING, user_id STRING, item_id STRING, ts TIMESTAMP, kafka_timestamp TIMESTAMP, "
        "ingested_at TIMESTAMP")
    erasures = spark.createDataFrame(  # u1 was erased twice: the latest counts; ingested == erased_at is dropped
        [("u1", START + hour), ("u1", START + 2 * hour), ("u3", START)], "user_id STRING, erased_at TIMESTAMP")
    kept = drop_erased(events, erasures)
    assert kept.columns == events.columns
    assert sorted(r["event_id"] for r in kept.collect()) == ["e3", "e4", "e5", "e7"]


def test_training_interactions_leave_out_events_of_erased_users(spark, own):
    append_events(spark, own, two_taste_events())
    interactions, _ = run_data.interactions_up_to(spark, own, RUN_DATE)  # no erasures table yet: everyone
    assert interactions.select("user_id").distinct().count() == 40
    interactions.unpersist()
    erasures = DeltaErasureStore(own)  # as DELETE /v1/users/<id> records them, with delta-rs
    erasures.record_erasure("u0", datetime.now(UTC))  # after all of u0's events reached bronze
    erasures.record_erasure("u1", START - timedelta(days=1))  # before u1's events arrived: they are new activity
    interactions, _ = run_data.interactions_up_to(spark, own, RUN_DATE)
    users = {r["user_id"] for r in interactions.select("user_id").distinct().collect()}
    interactions.unpersist()
    assert "u0" not in users and "u1" in users and len(users) == 39


def test_delta_rs_deletes_from_spark_written_tables_and_spark_reads_delta_rs_ones(spark, own):
    append_events(spark, own, two_taste_events())
    _, users = two_taste_catalogue()
    upsert_users(spark, own, users)
    removed = DeltaErasureStore(own).delete_user_rows("u0")
    assert removed["events_bronze"] == len(two_taste_events().query("user_id == 'u0'")) and removed["users"] == 1
    assert read_table(spark, own, EVENTS_BRONZE).where("user_id = 'u0'").count() == 0
    # the API's upsert on the table Spark created, then Spark's own on what delta-rs wrote
    assert DeltaAttributeStore(own).upsert_users([UserAttributes(user_id="u1", gender="x"),
                                                  UserAttributes(user_id="new")]) == UpsertCounts(1, 1)
    upsert_users(spark, own, users.head(2))
    rows = {r["user_id"]: r for r in read_table(spark, own, USERS).collect()}
    assert len(rows) == 41 and rows["new"]["updated_at"] is not None and rows["u1"]["gender"] == "f"


def test_spark_uses_tables_created_by_delta_rs(spark, own):
    DeltaAttributeStore(own).upsert_users([UserAttributes(user_id="u1", age_band="25-34")])
    _, users = two_taste_catalogue()
    upsert_users(spark, own, users.head(3))  # Spark's ensure_table accepts the delta-rs table and merges
    rows = {r["user_id"]: r["age_band"] for r in read_table(spark, own, USERS).collect()}
    assert rows == {"u0": "18-24", "u1": "18-24", "u2": "18-24"}
    assert DeltaAttributeStore(own).upsert_users([UserAttributes(user_id="u2")]) == UpsertCounts(0, 1)
