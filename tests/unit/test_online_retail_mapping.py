"""The UCI Online Retail loader as one mapping of the file loader: the same events as the loader it replaced,
and the same data from the file as CSV with other column names and string dates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.contracts.events import MAX_QUANTITY
from recsys.data.file_loader import FileSources, load_files
from recsys.data.frames import events_frame, sanitize_ids, stable_ids
from recsys.data.mapping import read_mapping
from recsys.data.online_retail import MAPPING_PATH, load_online_retail, load_online_retail_files

pytestmark = pytest.mark.unit

PARQUET = Path(os.environ.get(
    "RECSYS_ONLINE_RETAIL_PARQUET",
    Path(__file__).resolve().parents[3] / "shared/datasets/online-retail/online_retail.parquet"))
needs_file = pytest.mark.skipif(not PARQUET.is_file(), reason=f"Online Retail parquet not found at {PARQUET}")
SLICE = 40_000  # lines: enough for cancellations, unknown customers and price-0 lines
RENAMED = {"InvoiceNo": "Invoice", "StockCode": "Sku", "Description": "Product name", "Quantity": "Qty",
           "InvoiceDate": "Order date", "UnitPrice": "Price (GBP)", "CustomerID": "Customer", "Country": "Ctry"}


def todays_events(raw: pd.DataFrame) -> pd.DataFrame:
    """The events of the loader this mapping replaced (recsys/data/online_retail.py before the file loader)."""
    raw = raw.assign(InvoiceNo=raw["InvoiceNo"].astype(str), StockCode=raw["StockCode"].astype(str))
    occurrence = raw.groupby(["InvoiceNo", "StockCode"], sort=False).cumcount()
    known = raw["CustomerID"].notna()
    cancelled = raw["InvoiceNo"].str.startswith("C")
    is_purchase = known & ~cancelled & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
    is_cancellation = known & cancelled & (raw["Quantity"] != 0)
    lines = raw[is_purchase | is_cancellation].assign(occurrence=occurrence, purchase=is_purchase)
    purchase = lines["purchase"].to_numpy()
    return events_frame({
        "event_id": stable_ids("online-retail", lines["InvoiceNo"], lines["StockCode"], lines["occurrence"]),
        "user_id": ("c" + lines["CustomerID"].astype(np.int64).astype(str)).to_numpy(),
        "item_id": sanitize_ids(lines["StockCode"]).to_numpy(),
        "event_type": np.where(purchase, "purchase", "remove_from_cart").astype(object),
        "ts": lines["InvoiceDate"].dt.tz_localize("UTC").array,
        "session_id": sanitize_ids(lines["InvoiceNo"]).to_numpy(),
        "quantity": lines["Quantity"].abs().clip(upper=MAX_QUANTITY).to_numpy(),
        "price": lines["UnitPrice"].where(lines["UnitPrice"] >= 0).to_numpy(),
        "context": [None if bought else {"source": "cancellation"} for bought in purchase],
    })


def _renamed(node):
    """The mapping with every column name replaced by its new name."""
    if isinstance(node, dict):
        return {key: _renamed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed(value) for value in node]
    return RENAMED.get(node, node) if isinstance(node, str) else node


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_parquet(PARQUET)


@needs_file
def test_the_mapping_gives_the_same_events_as_the_loader_it_replaced(raw):
    result = load_online_retail_files(PARQUET)
    pd.testing.assert_frame_equal(result.shop.events, todays_events(raw))
    # what the old loader dropped silently is now quarantined, with its reason
    reasons = result.rejects["reason"].value_counts().to_dict()
    assert reasons == {"missing_field": int(raw["CustomerID"].isna().sum()),
                       "bad_price": int((raw["CustomerID"].notna() & ~raw["InvoiceNo"].str.startswith("C")
                                         & (raw["UnitPrice"] <= 0)).sum())}
    assert len(result.shop.events) + len(result.rejects) == len(raw)


@needs_file
def test_string_dates_in_the_file_load(raw, tmp_path):
    """Failed before the file loader with `Can only use .dt accessor with datetimelike values`."""
    head = raw.head(SLICE)
    dated = tmp_path / "dated.parquet"
    head.to_parquet(dated)
    stringly = tmp_path / "strings.parquet"
    head.assign(InvoiceDate=head["InvoiceDate"].dt.strftime("%-m/%-d/%Y %-H:%M")).to_parquet(stringly)
    expected = load_online_retail(dated)
    got = load_online_retail(stringly)
    pd.testing.assert_frame_equal(got.events, expected.events)
    pd.testing.assert_frame_equal(got.items, expected.items)
    pd.testing.assert_frame_equal(got.users, expected.users)


@needs_file
def test_renamed_columns_in_a_csv_with_a_renamed_mapping(raw, tmp_path):
    head = raw.head(SLICE)
    csv = tmp_path / "retail.csv"
    (head.assign(InvoiceDate=head["InvoiceDate"].dt.strftime("%-m/%-d/%Y %-H:%M"))
     .rename(columns=RENAMED).to_csv(csv, index=False))
    renamed = _renamed(yaml.safe_load(MAPPING_PATH.read_text()))
    assert renamed["events"]["rules"][0]["when"]["column"] == "Invoice"
    mapping = tmp_path / "renamed.yaml"
    mapping.write_text(yaml.safe_dump(renamed, sort_keys=False))  # keyword order matters
    parquet = tmp_path / "head.parquet"
    head.to_parquet(parquet)
    expected = load_files(FileSources(parquet), read_mapping(MAPPING_PATH))
    got = load_files(FileSources(csv), read_mapping(mapping))
    pd.testing.assert_frame_equal(got.shop.events, expected.shop.events)
    pd.testing.assert_frame_equal(got.shop.items, expected.shop.items)
    pd.testing.assert_frame_equal(got.shop.users, expected.shop.users)
    assert got.rejects["reason"].tolist() == expected.rejects["reason"].tolist()
