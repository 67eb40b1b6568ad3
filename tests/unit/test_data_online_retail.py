"""The Online Retail loader against the real shared parquet: counts, contract and idempotent ids."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from recsys.contracts.events import ID_PATTERN, MAX_QUANTITY
from recsys.data.frames import EVENT_COLUMNS, check_injective, iter_events, sanitize_ids
from recsys.data.online_retail import CANCELLATION_CONTEXT, SERVICE_CATEGORY, categorize, load_online_retail

pytestmark = pytest.mark.unit

PARQUET = Path(os.environ.get(
    "RECSYS_ONLINE_RETAIL_PARQUET",
    Path(__file__).resolve().parents[3] / "shared/datasets/online-retail/online_retail.parquet"))

# From the dataset's README.md (and recomputed from the raw file below).
README_PURCHASE_LINES, README_USERS, README_ITEMS = 397_884, 4_338, 3_665
README_PAIRS, README_BASKETS = 266_792, 18_532

needs_file = pytest.mark.skipif(not PARQUET.is_file(), reason=f"Online Retail parquet not found at {PARQUET} "
                                "(set RECSYS_ONLINE_RETAIL_PARQUET to run these tests)")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_parquet(PARQUET)


@pytest.fixture(scope="module")
def shop():
    return load_online_retail(PARQUET)


@pytest.fixture(scope="module")
def usable(raw) -> pd.DataFrame:
    return raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0) & ~raw["InvoiceNo"].str.startswith("C")
               & (raw["UnitPrice"] > 0)]


@needs_file
def test_purchases_match_readme_and_raw_file(shop, usable):
    purchases = shop.events[shop.events["event_type"] == "purchase"]
    assert len(purchases) == README_PURCHASE_LINES == len(usable)
    assert purchases["user_id"].nunique() == README_USERS == usable["CustomerID"].nunique()
    assert purchases["item_id"].nunique() == README_ITEMS == usable["StockCode"].nunique()
    assert purchases.groupby(["user_id", "item_id"]).ngroups == README_PAIRS
    assert purchases["session_id"].nunique() == README_BASKETS


@needs_file
def test_cancellations_become_removals(shop, raw):
    cancelled = raw[raw["CustomerID"].notna() & raw["InvoiceNo"].str.startswith("C")]
    removals = shop.events[shop.events["event_type"] == "remove_from_cart"]
    assert len(removals) == len(cancelled) > 0
    assert set(shop.events["event_type"]) == {"purchase", "remove_from_cart"}
    assert (removals["context"] == CANCELLATION_CONTEXT).all()
    assert shop.events.loc[shop.events["event_type"] == "purchase", "context"].isna().all()
    assert removals["quantity"].sum() == cancelled["Quantity"].abs().clip(upper=MAX_QUANTITY).sum()
    assert removals["session_id"].str.startswith("C").all()


@needs_file
def test_events_satisfy_contract(shop):
    events = shop.events
    assert tuple(events.columns) == EVENT_COLUMNS
    assert str(events["ts"].dt.tz) == "UTC" and events["ts"].is_monotonic_increasing
    assert events["quantity"].dtype == "int32" and events["quantity"].between(1, MAX_QUANTITY).all()
    for column in ("event_id", "user_id", "item_id", "session_id"):
        assert events[column].str.fullmatch(ID_PATTERN).all(), column
    sample = pd.concat([events.sample(3_000, random_state=1),
                        events[events["event_type"] == "remove_from_cart"].head(200),
                        events.nlargest(5, "quantity")])
    assert len(list(iter_events(sample))) == len(sample)


@needs_file
def test_line_fields_are_carried_over(shop):
    first = shop.events.iloc[0]
    assert (first["user_id"], first["item_id"], first["session_id"]) == ("c17850", "85123A", "536365")
    assert first["ts"] == pd.Timestamp("2010-12-01 08:26:00", tz="UTC")
    assert (first["quantity"], first["price"]) == (6, 2.55)


@needs_file
def test_event_ids_are_unique_and_stable_across_loads(shop):
    assert shop.events["event_id"].is_unique
    again = load_online_retail(PARQUET)
    pd.testing.assert_frame_equal(shop.events, again.events)


@needs_file
def test_stock_codes_are_sanitised_consistently(shop, raw):
    bad = raw.loc[~raw["StockCode"].str.fullmatch(ID_PATTERN), "StockCode"].unique()
    assert "BANK CHARGES" in bad
    assert "BANK_CHARGES" in set(shop.events["item_id"]) and "BANK_CHARGES" in set(shop.items["item_id"])
    assert set(shop.events["item_id"]) == set(shop.items["item_id"])
    assert set(shop.events["user_id"]) == set(shop.users["user_id"])


@needs_file
def test_items_take_most_frequent_title_and_median_price(shop, usable):
    items = shop.items.set_index("item_id")
    assert items.index.is_unique
    lines = usable[usable["StockCode"] == "85123A"]
    assert items.loc["85123A", "price"] == lines["UnitPrice"].median()
    assert items.loc["85123A", "title"] == lines["Description"].str.strip().mode().iloc[0]
    assert items["brand"].isna().all() and items["title"].notna().all() and items["category"].notna().all()
    assert items.loc["POST", "category"] == SERVICE_CATEGORY
    assert items.loc["BANK_CHARGES", "category"] == SERVICE_CATEGORY
    assert items["category"].value_counts(normalize=True).max() < 0.5  # a proxy, but not one big bucket


@needs_file
def test_users_are_located_by_country(shop, usable):
    users = shop.users.set_index("user_id")
    assert users.loc["c12347", "location"] == usable.loc[usable["CustomerID"] == 12347, "Country"].iloc[0]
    assert users[["age_band", "gender"]].isna().all().all() and users["location"].notna().all()


def test_categorize_first_matching_rule_wins():
    titles = pd.Series(["CHRISTMAS CANDLE HOLDER", "RED RETROSPOT MUG", "SOMETHING ELSE", "Postage"])
    codes = pd.Series(["1", "2", "3", "POST"])
    assert categorize(titles, codes).tolist() == ["christmas", "kitchen_dining", "other", SERVICE_CATEGORY]


def test_sanitising_refuses_to_merge_distinct_ids():
    raw_ids = pd.Series(["A B", "A_B", "OK"])
    with pytest.raises(ValueError, match="merges distinct ids"):
        check_injective(raw_ids, sanitize_ids(raw_ids), "StockCode")
