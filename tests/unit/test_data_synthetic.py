"""The synthetic shop must look like shop behaviour and honour the event contract exactly."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys.contracts.events import EVENT_TYPES, ID_PATTERN
from recsys.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, iter_events
from recsys.data.synthetic import SyntheticShopSpec, generate_shop

pytestmark = pytest.mark.unit

SPEC = SyntheticShopSpec(n_users=800, n_items=400, n_events=30_000, seed=7,
                         end=datetime(2024, 6, 1, 12, tzinfo=UTC), days=14)


@pytest.fixture(scope="module")
def shop():
    return generate_shop(SPEC)


def test_frames_have_contract_columns_and_dtypes(shop):
    assert tuple(shop.events.columns) == EVENT_COLUMNS
    assert tuple(shop.items.columns) == ITEM_COLUMNS
    assert tuple(shop.users.columns) == USER_COLUMNS
    assert str(shop.events["ts"].dt.tz) == "UTC"
    assert shop.events["quantity"].dtype == "int32"
    assert shop.events["price"].dtype == "float64"
    assert len(shop.events) == SPEC.n_events
    assert len(shop.items) == SPEC.n_items and len(shop.users) == SPEC.n_users


def test_sample_of_events_validates_against_contract(shop):
    sample = shop.events.sample(2_000, random_state=0)
    validated = list(iter_events(sample))
    assert len(validated) == len(sample)
    assert {event.event_type for event in validated} <= set(EVENT_TYPES)
    first = validated[0]
    assert first.event_id == sample.iloc[0]["event_id"] and first.ts == sample.iloc[0]["ts"]


def test_ids_unique_match_pattern_and_reference_catalogue(shop):
    events = shop.events
    assert events["event_id"].is_unique
    assert shop.items["item_id"].is_unique and shop.users["user_id"].is_unique
    for column in ("event_id", "user_id", "item_id", "session_id"):
        assert events[column].str.fullmatch(ID_PATTERN).all(), column
    assert re.fullmatch(r"i\d{6}", shop.items["item_id"].iloc[0])
    assert re.fullmatch(r"u\d{6}", shop.users["user_id"].iloc[0])
    assert set(events["item_id"]) <= set(shop.items["item_id"])
    assert set(events["user_id"]) <= set(shop.users["user_id"])


def test_timestamps_sorted_inside_window(shop):
    ts = shop.events["ts"]
    assert ts.is_monotonic_increasing
    assert ts.min() >= pd.Timestamp(SPEC.start) and ts.max() < pd.Timestamp(SPEC.end)


def test_funnel_narrows(shop):
    counts = shop.events["event_type"].value_counts()
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    assert 0 < counts["remove_from_cart"] < counts["add_to_cart"]


def test_purchases_follow_a_cart_addition_of_the_same_item_in_the_session(shop):
    events = shop.events
    carts = (events[events["event_type"] == "add_to_cart"].groupby(["session_id", "item_id"])["ts"].min()
             .rename("cart_ts"))
    purchases = events[events["event_type"] == "purchase"].join(carts, on=["session_id", "item_id"])
    assert purchases["cart_ts"].notna().all()
    assert (purchases["cart_ts"] < purchases["ts"]).all()
    # the checkout closes the session: nothing but purchases after the first purchase
    first_buy = purchases.groupby("session_id")["ts"].min().rename("first_buy")
    later = events.join(first_buy, on="session_id")
    assert (later.loc[later["ts"] > later["first_buy"], "event_type"] == "purchase").all()


def test_sessions_belong_to_one_user_and_one_category(shop):
    events = shop.events.merge(shop.items[["item_id", "category"]], on="item_id")
    per_session = events.groupby("session_id").agg(users=("user_id", "nunique"), cats=("category", "nunique"))
    assert (per_session["users"] == 1).all() and (per_session["cats"] == 1).all()


def test_each_user_has_one_to_three_interests():
    only_interests = generate_shop(replace(SPEC, interest_share=1.0, n_events=10_000))
    events = only_interests.events.merge(only_interests.items[["item_id", "category"]], on="item_id")
    per_user = events.groupby("user_id")["category"].nunique()
    assert per_user.between(1, SPEC.max_interests).all()
    assert (per_user == SPEC.max_interests).any()


def test_popularity_is_skewed(shop):
    views = shop.events.loc[shop.events["event_type"] == "view", "item_id"].value_counts()
    top_share = views.iloc[: SPEC.n_items // 10].sum() / views.sum()
    assert top_share > 0.5  # a uniform catalogue would give ~0.1


def test_catalogue_is_consistent(shop):
    items = shop.items
    assert items["brand"].notna().all()
    assert (items.groupby("brand")["category"].nunique() == 1).all()  # brands belong to one category
    assert 2 <= items["category"].nunique() <= SPEC.n_categories
    assert (items["price"] >= SPEC.min_price).all()
    prices = shop.events.merge(items[["item_id", "price"]], on="item_id", suffixes=("", "_catalogue"))
    assert (prices["price"] == prices["price_catalogue"]).all()
    assert shop.events["quantity"].ge(1).all()
    assert (shop.events.loc[shop.events["event_type"].isin(["view", "click"]), "quantity"] == 1).all()


def test_users_have_attributes(shop):
    assert shop.users[["age_band", "gender", "location"]].notna().all().all()


def test_same_seed_same_data_other_seed_other_data(shop):
    again = generate_shop(SPEC)
    pd.testing.assert_frame_equal(shop.events, again.events)
    pd.testing.assert_frame_equal(shop.items, again.items)
    pd.testing.assert_frame_equal(shop.users, again.users)
    other = generate_shop(replace(SPEC, seed=SPEC.seed + 1))
    assert not set(other.events["event_id"]) & set(shop.events["event_id"])
    assert not other.events["item_id"].equals(shop.events["item_id"])


def test_tiny_shops_and_progress_bar(capsys):
    tiny = generate_shop(SyntheticShopSpec(n_users=1, n_items=1, n_events=5, days=0.01), progress=True)
    assert len(tiny.events) == 5 and tiny.items["category"].nunique() == 1
    assert "synthetic events" in capsys.readouterr().err
    empty = generate_shop(SyntheticShopSpec(n_users=3, n_items=3, n_events=0))
    assert empty.events.empty and tuple(empty.events.columns) == EVENT_COLUMNS


@pytest.mark.parametrize("bad", [{"p_click": 1.5}, {"n_users": 0}, {"n_events": -1}, {"days": 0},
                                 {"end": datetime(2024, 1, 1)}, {"mean_gap_s": 0.5}])
def test_spec_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        SyntheticShopSpec(**{"n_users": 10, "n_items": 10, "n_events": 10, **bad})
