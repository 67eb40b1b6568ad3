"""The file loader: renamed columns, string times in common formats, bad rows as rejects with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recsys.config import ConfigError
from recsys.contracts.events import ID_PATTERN, MAX_QUANTITY
from recsys.data.file_loader import BAD_TS, FileSources, load_files
from recsys.data.files import file_format, read_file
from recsys.data.frames import EVENT_COLUMNS, iter_events
from recsys.data.mapping import FieldSpec, Mapping, read_mapping
from recsys.data.parsing import parse_numbers, parse_times

pytestmark = pytest.mark.unit

SHOP_MAPPING = {
    "name": "test-shop",
    "events": {
        "user_id": {"column": "Customer", "prefix": "u"},
        "item_id": "Product",
        "event_type": {"column": "Action", "values": {"bought": "purchase", "looked": "view"}},
        "ts": {"column": "When", "dayfirst": True, "timezone": "Europe/London"},
        "session_id": "Visit",
        "quantity": "Qty",
        "price": {"column": "Price"},
    },
    "items": {"title": "Name", "category": {"column": "Dept"}},
    "users": {"location": "Town"},
}
GOOD = [  # Customer, Product, Action, When, Visit, Qty, Price, Name, Dept, Town
    ("17", "p1", "looked", "03/02/2024 09:15", "v1", "", "", "Red mug", "kitchen", "Leeds"),
    ("17", "p1", "bought", "03/02/2024 09:20", "v1", "2", "£4.50", "Red mug", "kitchen", "Leeds"),
    ("18", "p2", "Add to cart", "04/02/2024 18:00", "v2", "1", "12", "Blue lamp", "lighting", "York"),
    ("18", "p2", "transaction", "04/02/2024 18:05", "v2", "1", "12.00", "Blue lamp", "lighting", "York"),
]
BAD = [  # (row, expected reason)
    (("", "p1", "bought", "05/02/2024 10:00", "v3", "1", "4.5", "Red mug", "kitchen", "Leeds"), "missing_field"),
    (("19", "p1", "teleported", "05/02/2024 10:00", "v3", "1", "4.5", "Red mug", "kitchen", "Hull"),
     "unknown_event_type"),
    (("19", "p1", "bought", "not a date", "v3", "1", "4.5", "Red mug", "kitchen", "Hull"), BAD_TS),
    (("19", "p1", "bought", "05/02/1970 10:00", "v3", "1", "4.5", "Red mug", "kitchen", "Hull"), "absurd_ts"),
    (("19", "p1", "bought", "05/02/2024 10:00", "v3", "two", "4.5", "Red mug", "kitchen", "Hull"), "bad_quantity"),
    (("19", "p1", "bought", "05/02/2024 10:00", "v3", "0", "4.5", "Red mug", "kitchen", "Hull"), "bad_quantity"),
    (("19", "p1", "bought", "05/02/2024 10:00", "v3", "1", "-3", "Red mug", "kitchen", "Hull"), "bad_price"),
    (("19", "p1", "bought", "05/02/2024 10:00", "v3", "1", "cheap", "Red mug", "kitchen", "Hull"), "bad_price"),
]
COLUMNS = ["Customer", "Product", "Action", "When", "Visit", "Qty", "Price", "Name", "Dept", "Town"]


@pytest.fixture
def shop_files(tmp_path: Path) -> tuple[Path, Path]:
    rows = GOOD[:2] + [row for row, _ in BAD] + GOOD[2:]
    csv = tmp_path / "sales.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(csv, index=False)
    mapping = tmp_path / "shop.yaml"
    mapping.write_text(yaml.safe_dump(SHOP_MAPPING))
    return csv, mapping


def test_renamed_columns_and_string_dates_become_contract_events(shop_files):
    csv, mapping = shop_files
    result = load_files(FileSources(csv), read_mapping(mapping))
    events = result.shop.events
    assert tuple(events.columns) == EVENT_COLUMNS
    assert events["event_type"].tolist() == ["view", "purchase", "add_to_cart", "purchase"]
    assert events["user_id"].tolist() == ["u17", "u17", "u18", "u18"]
    # day first, London winter time = UTC
    assert events["ts"].iloc[0] == pd.Timestamp("2024-02-03 09:15", tz="UTC")
    assert events["quantity"].tolist() == [1, 2, 1, 1]  # an empty quantity is the contract's 1
    assert events["price"].iloc[1] == 4.5 and pd.isna(events["price"].iloc[0])
    assert len(list(iter_events(events))) == len(events)  # every event passes the API's validation


def test_bad_rows_are_rejected_with_their_reason_and_raw_values(shop_files):
    csv, mapping = shop_files
    result = load_files(FileSources(csv), read_mapping(mapping))
    rejects = result.rejects
    assert rejects["reason"].tolist() == [reason for _, reason in BAD]
    assert rejects["row"].tolist() == list(range(3, 3 + len(BAD)))  # 1-based data rows of the file
    assert (rejects["table"] == "events").all() and (rejects["source"] == str(csv)).all()
    assert rejects["detail"].iloc[1] == "unknown_event_type:teleported"
    assert json.loads(rejects["raw"].iloc[4])["Qty"] == "two"
    summary = result.summary()
    assert summary["rejected"] == len(BAD) and summary["events"] == len(GOOD)
    assert summary["reasons"]["events:bad_quantity"]["rows"] == 2


def test_items_and_users_come_from_the_event_columns(shop_files):
    csv, mapping = shop_files
    shop = load_files(FileSources(csv), read_mapping(mapping)).shop
    items = shop.items.set_index("item_id")
    assert items.loc["p1", ["title", "category"]].tolist() == ["Red mug", "kitchen"]
    assert items.loc["p2", "price"] == 12.0 and items.loc["p1", "price"] == 4.5
    assert shop.users.set_index("user_id").loc["u18", "location"] == "York"
    assert set(shop.users["user_id"]) == {"u17", "u18"}  # the rejected rows' users are not created


def test_items_and_users_files_with_their_own_columns(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in [
        {"uid": 1, "sku": "A-1", "type": "view", "t": 1_706_954_400},
        {"uid": 1, "sku": "A-1", "type": "purchase", "t": 1_706_954_460_000},
        {"uid": 2, "sku": "B 2", "type": "view", "t": "2024-02-03T10:00:00+01:00"}]) + "\n")
    items = tmp_path / "items.csv"
    pd.DataFrame({"sku": ["A-1", "B 2", None], "label": ["Anvil", "Bell", "x"], "cost": ["10", "n/a", "1"]}
                 ).to_csv(items, index=False)
    users = tmp_path / "users.parquet"
    pd.DataFrame({"uid": [1, 2], "years": [29, 71], "sex": ["F", "m"]}).to_parquet(users)
    mapping = Mapping.model_validate({
        "name": "files", "events": {"user_id": "uid", "item_id": "sku", "event_type": "type", "ts": "t"},
        "items": {"title": "label", "price": "cost"},
        "users": {"age": "years", "gender": {"column": "sex", "values": {"f": "f", "m": "m"}}}})
    result = load_files(FileSources(events, items, users), mapping)
    ts = result.shop.events.set_index("event_type")["ts"]
    assert ts["purchase"] - pd.Timedelta(minutes=1) == pd.Timestamp("2024-02-03 10:00", tz="UTC")  # ms
    assert ts["view"].tolist() == [pd.Timestamp("2024-02-03 09:00", tz="UTC"),  # an explicit offset wins
                                   pd.Timestamp("2024-02-03 10:00", tz="UTC")]  # seconds
    assert result.shop.events["item_id"].str.fullmatch(ID_PATTERN).all()
    catalogue = result.shop.items.set_index("item_id")
    assert catalogue.loc["A-1", "title"] == "Anvil" and pd.isna(catalogue.loc["B_2", "price"])
    assert result.shop.users["age_band"].tolist() == ["25-34", "65+"]
    assert result.shop.users["gender"].tolist() == ["f", "m"]
    assert result.rejects[["table", "reason"]].values.tolist() == [["items", "missing_field"]]


def test_the_same_file_gives_the_same_event_ids(shop_files, tmp_path: Path):
    csv, mapping = shop_files
    first = load_files(FileSources(csv), read_mapping(mapping)).shop.events
    pd.testing.assert_frame_equal(first, load_files(FileSources(csv), read_mapping(mapping)).shop.events)
    assert first["event_id"].is_unique


def test_a_missing_column_names_the_columns_the_file_has(shop_files):
    csv, _ = shop_files
    mapping = Mapping.model_validate({**SHOP_MAPPING, "events": {**SHOP_MAPPING["events"], "user_id": "CustomerID"}})
    with pytest.raises(ConfigError, match=r"'CustomerID' is not in the file; it has \['Customer'"):
        load_files(FileSources(csv), mapping)


def test_a_mapping_with_an_unknown_key_or_rule_type_fails_with_the_file_named(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "events": {"user_id": "u", "item_id": "i", "ts": "t",
                                                              "rules": [{"when": {"column": "a"},
                                                                         "event_type": "teleport"}]}}))
    with pytest.raises(ConfigError, match=r"bad\.yaml.*teleport"):
        read_mapping(path)


@pytest.mark.parametrize(("text", "spec", "expected"), [
    ("2024-02-03 10:00:00", {}, "2024-02-03 10:00"),
    ("2024-07-03T10:00:00Z", {"timezone": "Europe/London"}, "2024-07-03 10:00"),
    ("2024-07-03 10:00", {"timezone": "Europe/London"}, "2024-07-03 09:00"),  # summer time
    ("12/1/2010 8:26", {}, "2010-12-01 08:26"),                               # the UCI CSV's format
    ("03/02/2024", {"dayfirst": True}, "2024-02-03 00:00"),
    ("3 Feb 2024 10:00", {}, "2024-02-03 10:00"),
    ("20240203-1000", {"format": "%Y%m%d-%H%M"}, "2024-02-03 10:00"),
    ("1706954400", {}, "2024-02-03 10:00"),
    ("1706954400000", {"unit": "ms"}, "2024-02-03 10:00"),
])
def test_times_in_common_formats(text, spec, expected):
    parsed = parse_times(pd.Series([text]), FieldSpec(column="t", **spec))
    assert parsed.iloc[0] == pd.Timestamp(expected, tz="UTC")
    assert str(parsed.dtype) == "datetime64[us, UTC]"


def test_times_that_do_not_parse_are_missing_not_an_error():
    parsed = parse_times(pd.Series(["2024-02-03 10:00", "soon", None]), FieldSpec(column="t"))
    assert parsed.iloc[0] == pd.Timestamp("2024-02-03 10:00", tz="UTC") and parsed.iloc[1:].isna().all()


def test_numbers_with_currency_and_separators():
    parsed = parse_numbers(pd.Series(["£4.50", "1,234.5", "EUR 3", "x", None]), FieldSpec(column="p"))
    assert parsed.iloc[:3].tolist() == [4.5, 1234.5, 3.0] and parsed.iloc[3:].isna().all()
    comma = parse_numbers(pd.Series(["1.234,5"]), FieldSpec(column="p", decimal_comma=True))
    assert comma.iloc[0] == 1234.5


def test_large_files_are_read_in_chunks_with_progress(tmp_path: Path):
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": range(2_500), "b": ["x"] * 2_500}).to_csv(path, index=False)
    seen: list[tuple[float | None, int]] = []
    frame = read_file(path, chunk_rows=1_000, on_progress=lambda fraction, rows: seen.append((fraction, rows)))
    assert len(frame) == 2_500 and frame["a"].iloc[-1] == "2499"  # values stay text
    assert [rows for _, rows in seen][:3] == [1_000, 2_000, 2_500]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_file_formats_come_from_the_name():
    assert [file_format(n) for n in ("a.csv", "a.csv.gz", "a.tsv", "a.parquet", "a.jsonl", "a.json")] == [
        "csv", "csv", "tsv", "parquet", "jsonl", "jsonl"]
    with pytest.raises(ValueError, match="cannot tell the format"):
        file_format("a.xlsx")


def test_quantities_above_the_contract_are_capped_or_rejected(tmp_path: Path):
    path = tmp_path / "bulk.csv"
    pd.DataFrame({"u": ["1", "2"], "i": ["a", "b"], "t": ["2024-01-01", "2024-01-02"],
                  "q": [str(MAX_QUANTITY + 5), "3"]}).to_csv(path, index=False)
    events = {"user_id": "u", "item_id": "i", "ts": "t", "quantity": "q"}
    capped = load_files(FileSources(path), Mapping.model_validate({"name": "x", "events": events}))
    assert capped.shop.events["quantity"].tolist() == [MAX_QUANTITY, 3]
    strict = load_files(FileSources(path), Mapping.model_validate(
        {"name": "x", "events": {**events, "clip_quantity": False}}))
    assert strict.rejects["reason"].tolist() == ["bad_quantity"] and len(strict.shop.events) == 1
