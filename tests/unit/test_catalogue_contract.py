"""The attribute contract and its Arrow form: the rows the API accepts are exactly the tables' columns."""

import json

import pyarrow as pa
import pytest
from pydantic import ValidationError

from recsys.contracts.catalogue import MAX_TITLE_LENGTH, ItemAttributes, UserAttributes, check_id
from recsys.contracts.events import MAX_ID_LENGTH
from recsys.contracts.tables import ALL_TABLES, ITEMS, USER_DATA_TABLES, USER_ERASURES, USERS
from recsys.stores.delta_rs import arrow_schema, arrow_type, id_literal

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("model", "spec"), [(ItemAttributes, ITEMS), (UserAttributes, USERS)])
def test_rows_hold_the_table_columns_but_updated_at(model, spec):
    assert [*model.model_fields, "updated_at"] == spec.columns
    assert spec.columns[0] == model.KEY


def test_item_rows_are_validated():
    item = ItemAttributes(item_id="i-1", title="Red shoe", category="shoes", brand="acme", price=12.5)
    assert item.price == 12.5 and ItemAttributes(item_id="i2").title is None
    for bad in ({"item_id": "a b"}, {"item_id": ""}, {"item_id": "x" * (MAX_ID_LENGTH + 1)},
                {"item_id": "i", "price": -1}, {"item_id": "i", "price": float("inf")},
                {"item_id": "i", "title": "t" * (MAX_TITLE_LENGTH + 1)}, {"item_id": "i", "colour": "red"}):
        with pytest.raises(ValidationError):
            ItemAttributes.model_validate(bad)


def test_a_whole_number_sent_as_2_0_is_an_integer_as_json_schema_says_even_in_strict_mode():
    assert ItemAttributes.model_validate({"item_id": "i", "stock": 2251.0}, strict=True).stock == 2251
    for bad in (2.5, "7", True, float("inf")):
        with pytest.raises(ValidationError):
            ItemAttributes.model_validate({"item_id": "i", "stock": bad}, strict=True)


def test_user_rows_are_validated():
    assert UserAttributes(user_id="u:1@shop", age_band="25-34").gender is None
    for bad in ({"user_id": "u'1"}, {"user_id": "u", "gender": "f" * 1000}, {"user_id": "u", "age": 3}):
        with pytest.raises(ValidationError):
            UserAttributes.model_validate(bad)


def test_ids_outside_the_rule_never_reach_a_predicate():
    assert id_literal("u:1@shop") == "'u:1@shop'" and check_id("a") == "a"
    for bad in ("", "x' OR '1'='1", "a b", "x" * (MAX_ID_LENGTH + 1), None):
        with pytest.raises(ValueError):
            id_literal(bad)


def test_ddl_types_map_to_the_arrow_types_delta_stores_as_spark_does():
    assert arrow_type("MAP<STRING, STRING>") == pa.map_(pa.string(), pa.string())
    assert arrow_type("ARRAY<FLOAT>") == pa.list_(pa.float32())
    assert arrow_type("TIMESTAMP") == pa.timestamp("us", tz="UTC")  # Delta "timestamp", not timestamp_ntz
    with pytest.raises(ValueError):
        arrow_type("INTERVAL")
    for spec in ALL_TABLES:  # every contract table converts, column for column
        assert arrow_schema(spec).names == spec.columns


def test_forgetting_covers_every_table_keyed_by_user():
    assert {"events_bronze", "users", "user_factors"} <= {t.name for t in USER_DATA_TABLES}
    assert all("user_id" in t.columns for t in USER_DATA_TABLES)
    assert {t for t in ALL_TABLES if "user_id" in t.columns} == {*USER_DATA_TABLES, USER_ERASURES}
    assert USER_ERASURES in ALL_TABLES and USER_ERASURES not in USER_DATA_TABLES
    assert json.dumps(USER_ERASURES.columns) == '["user_id", "erased_at"]'
