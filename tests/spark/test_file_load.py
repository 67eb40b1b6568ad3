"""A shop's own files on real Delta: load, quarantine, load again (nothing added)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from pyspark.sql import functions as F

from recsys.batch.backfill import load_shop, quarantine_rejects
from recsys.batch.data_quality import check_events
from recsys.contracts.tables import EVENTS_BRONZE, EVENTS_QUARANTINE, ITEMS
from recsys.data.file_loader import FileSources, load_files
from recsys.data.mapping import read_mapping
from recsys.spark.delta import read_table
from tests.shop_data import two_taste_catalogue, two_taste_events

pytestmark = pytest.mark.spark
RUN_DATE = "2026-11-02"
MAPPING = {
    "name": "two-tastes",
    "events": {"user_id": "shopper", "item_id": "sku", "ts": {"column": "when", "format": "%d.%m.%Y %H:%M"},
               "event_type": {"column": "what", "values": {"seen": "view", "sold": "purchase"}},
               "quantity": "n"},
    "items": {"item_id": "sku", "title": "name", "category": {"column": "dept"}, "brand": "maker",
              "price": "price"},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> FileSources:
    root: Path = tmp_path_factory.mktemp("shop-files")
    events = two_taste_events()
    sales = pd.DataFrame({"shopper": events["user_id"], "sku": events["item_id"],
                          "what": events["event_type"].map({"view": "seen", "purchase": "sold"}),
                          "when": events["ts"].dt.strftime("%d.%m.%Y %H:%M"), "n": events["quantity"]})
    bad = pd.DataFrame({"shopper": ["", "u1", "u2"], "sku": ["a1", "a1", "a2"], "what": ["sold", "stolen", "sold"],
                        "when": ["01.11.2026 10:00", "01.11.2026 10:00", "yesterday"], "n": [1, 1, 1]})
    pd.concat([sales, bad], ignore_index=True).to_csv(root / "sales.csv", index=False)
    items, _ = two_taste_catalogue()
    renamed = {"item_id": "sku", "title": "name", "category": "dept", "brand": "maker"}
    items.rename(columns=renamed).drop(columns="updated_at").to_json(root / "items.jsonl", orient="records",
                                                                    lines=True)
    (root / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    return FileSources(root / "sales.csv", root / "items.jsonl")


@pytest.fixture(scope="module")
def lake(settings, tmp_path_factory):
    """Own Delta root."""
    root: Path = tmp_path_factory.mktemp("file-lake")
    return settings.model_copy(update={
        "storage": settings.storage.model_copy(update={
            "delta_root": str(root / "delta"), "checkpoint_root": str(root / "checkpoints"),
            "reports_root": str(root / "reports")}),
    })


@pytest.fixture(scope="module")
def loaded(spark, lake, files):
    mapping = read_mapping(files.events.parent / "mapping.yaml")
    result = load_files(files, mapping)
    for _ in range(2):  # loading again adds nothing
        load_shop(spark, lake, result.shop)
        quarantine_rejects(spark, lake, load_files(files, mapping).rejects)
    return result


def test_files_load_into_bronze_once_and_rejects_into_quarantine_once(loaded, spark, lake):
    bronze = read_table(spark, lake, EVENTS_BRONZE)
    assert bronze.count() == len(two_taste_events()) == len(loaded.shop.events)
    assert bronze.select("event_id").distinct().count() == bronze.count()
    quarantined = read_table(spark, lake, EVENTS_QUARANTINE).orderBy("detail").collect()
    assert [r["reason"] for r in quarantined] == ["missing_field", "unknown_event_type", "bad_ts"]
    first_bad_row = len(two_taste_events()) + 1
    assert quarantined[0]["detail"] == f"sales.csv events row {first_bad_row}: missing_field:user_id"
    assert all(r["kafka_topic"] is None and b"sku" in r["raw"] for r in quarantined)
    catalogue = read_table(spark, lake, ITEMS).where(F.col("item_id") == "a3").first()
    assert (catalogue["category"], catalogue["brand"], catalogue["price"]) == ("garden", "brand-a", 8.0)


def test_load_rejects_do_not_count_as_the_streams_quarantine(spark, settings, tmp_path):
    own = settings.model_copy(update={"storage": settings.storage.model_copy(update={
        "delta_root": str(tmp_path / "delta")})})
    rejects = pd.DataFrame({"table": ["events"], "source": ["/x/sales.csv"], "row": [7], "reason": ["bad_ts"],
                            "detail": ["bad_ts:soon"], "raw": ['{"when": "soon"}']})
    quarantine_rejects(spark, own, rejects)
    today = str(read_table(spark, own, EVENTS_QUARANTINE).first()["quarantine_date"])
    assert check_events(spark, own, today).day_quarantined == 0
    stream_row = read_table(spark, own, EVENTS_QUARANTINE).withColumn("kafka_topic", F.lit("shop-events")) \
        .withColumn("detail", F.lit("missing_field:user_id"))
    stream_row.write.format("delta").mode("append").save(own.table_path(EVENTS_QUARANTINE.name))
    assert check_events(spark, own, today).day_quarantined == 1  # the stream's rejects still count
