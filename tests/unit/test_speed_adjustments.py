"""The speed layer's per-user logic: fold-in, interests, sessions, cart, co-views, trending weights."""

import math

import numpy as np
import pytest

from recsys.als.foldin import FoldIn, target_preference
from recsys.config import load_settings
from recsys.contracts import redis_keys as rk
from recsys.contracts.events import QUANTITY_MODES
from recsys.contracts.redis_keys import current_interests, decode_vector, encode_vector
from recsys.speed.adjustments import ModelContext, SpeedEvent, UserState, update_user
from recsys.speed.trending import bucket_weights

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test", environ={})
CFG, WEIGHTS = SETTINGS.stream, SETTINGS.events.weights
ITEMS = ["a1", "a2", "a3", "b1", "b2", "b3"]
FACTORS = np.array([[1, 0], [0.9, 0.1], [0.8, 0], [0, 1], [0.1, 0.9], [0, 0.8]])
CATALOGUE = {"a1": ("shoes", "acme"), "a2": ("shoes", "zeta"), "b1": ("hats", "acme")}
EMPTY = UserState(profile={}, vector=None, recent=[])


def ev(item, event_type="view", ts=1_000.0, user="u", session=None, quantity=1):
    return SpeedEvent(user, item, event_type, ts, session, quantity)


def context(version="v1", batch=None) -> ModelContext:
    return ModelContext(version, FoldIn(ITEMS, FACTORS), lambda user: (batch or {}).get(user))


@pytest.mark.parametrize(("value", "current", "target"), [
    (1.0, 0.0, 0.5),           # half way to 1
    (3.0, 0.2, 0.8),           # 0.2 + 3/4 * 0.8
    (-2.0, 0.6, 0.2),          # 0.6 + 2/3 * -0.6
    (1.0, 1.2, None),          # already predicted: no change
    (-1.0, -0.1, None),
])
def test_oryx_target_preference_hand_computed(value, current, target):
    got = target_preference(value, current)
    assert got == pytest.approx(target) if target is not None else got is None


def test_fold_in_moves_the_prediction_towards_the_target_by_the_items_leverage():
    fold = FoldIn(ITEMS, FACTORS)
    x = fold.update(np.zeros(2), "b1", 1.0)
    direction = np.linalg.solve(FACTORS.T @ FACTORS, FACTORS[3])
    # Oryx's least-squares step: the prediction moves by (target - current) * y (YᵀY)⁻¹ yᵀ, never past it.
    assert float(x @ FACTORS[3]) == pytest.approx(0.5 * FACTORS[3] @ direction, rel=1e-2)
    assert 0 < float(x @ FACTORS[3]) < 0.5
    assert fold.update(x, "unknown-item", 1.0) is x


def test_a_user_unknown_to_the_model_gets_a_vector_after_a_few_events():
    update = update_user([ev("b1"), ev("b2", ts=1_001.0), ev("b3", ts=1_002.0)], EMPTY, CFG, WEIGHTS, {}, context())
    x = decode_vector(update.vector, 2)
    assert update.profile[rk.PROFILE_MODEL] == "v1"
    scores = FACTORS @ x
    assert set(np.argsort(-scores)[:3]) == {3, 4, 5}  # the b* items rank first


def test_a_negative_event_lowers_the_items_prediction():
    fold = FoldIn(ITEMS, FACTORS)
    x = fold.update(np.zeros(2), "a1", 4.0)
    after = fold.update(x, "a1", WEIGHTS["remove_from_cart"])
    assert float(after @ FACTORS[0]) < float(x @ FACTORS[0])


def test_a_stored_vector_of_another_model_restarts_from_the_batch_vector_and_refolds_recent_items():
    state = UserState(profile={rk.PROFILE_MODEL: "v0"}, vector=encode_vector(np.array([9.0, 9.0])),
                      recent=[("a1", 990.0)])
    update = update_user([ev("a2")], state, CFG, WEIGHTS, {}, context("v1", {"u": np.array([0.1, 0.0])}))
    x = decode_vector(update.vector, 2)
    assert x[0] > 0.1 and abs(x[1]) < 1.0  # moved from the batch vector towards a*, not from (9, 9)
    same = update_user([ev("a2")], UserState(update.profile, update.vector, []), CFG, WEIGHTS, {}, context("v1"))
    assert decode_vector(same.vector, 2)[0] >= x[0]  # this model's vector is kept


def test_vector_encoding_round_trips_at_float16_and_rejects_other_ranks():
    x = np.array([0.5, -1.25, 3.0])
    assert np.allclose(decode_vector(encode_vector(x), 3), x)
    assert len(encode_vector(np.zeros(64))) == 128
    assert decode_vector(encode_vector(x), 4) is None and decode_vector(None, 3) is None


def test_interests_decay_by_half_life_hand_computed():
    h = CFG.interest_half_life_s
    first = update_user([ev("a1", ts=0.0 + 1)], EMPTY, CFG, WEIGHTS, CATALOGUE, None)
    second = update_user([ev("a2", "click", ts=1 + h)], UserState(first.profile, None, []), CFG, WEIGHTS,
                         CATALOGUE, None)
    weights = current_interests(second.profile, 1 + 2 * h, h)
    assert weights["c:shoes"] == pytest.approx((1 * 0.5 + 2) * 0.5)  # view halved once, then both halved
    assert weights["b:acme"] == pytest.approx(1 * 0.25)
    assert weights["b:zeta"] == pytest.approx(2 * 0.5)


def test_an_older_event_adds_a_decayed_weight_and_negative_interest_is_dropped():
    h = CFG.interest_half_life_s
    update = update_user([ev("a1", ts=1 + h), ev("b1", ts=1.0)], EMPTY, CFG, WEIGHTS, CATALOGUE, None)
    assert current_interests(update.profile, 1 + h, h)["c:hats"] == pytest.approx(0.5)
    removed = update_user([ev("b1", "remove_from_cart", ts=2 + h)], UserState(update.profile, None, []), CFG, WEIGHTS,
                          CATALOGUE, None)
    assert "c:hats" not in current_interests(removed.profile, 2 + h, h)


def test_sessions_split_on_a_gap_or_a_new_session_id_and_are_capped():
    gap = CFG.session_gap_s
    events = [ev("a1", ts=10.0), ev("a2", ts=20.0), ev("a3", ts=21.0 + gap),
              ev("b1", ts=30.0 + gap, session="s-x"), ev("b2", ts=35.0 + gap, session="s-x"),
              ev("b3", ts=40.0 + gap, session="s-y")]
    profile = update_user(events, EMPTY, CFG, WEIGHTS, {}, None).profile
    assert profile[rk.PROFILE_SESSIONS] == [[int(40 + gap), 0, 1], [int(30 + gap), 5, 2], [int(21 + gap), 0, 1]]
    assert profile[rk.PROFILE_SESSION_ID] == "s-y" and CFG.max_sessions == 3
    more = update_user([ev("c1", ts=41.0 + gap)], UserState(profile, None, []), CFG, WEIGHTS, {}, None).profile
    assert more[rk.PROFILE_SESSIONS][0] == [int(40 + gap), 1, 2]  # no id, no gap: the same session


def test_cart_purchases_and_event_count():
    state = UserState(profile={rk.PROFILE_EVENTS: 5}, vector=None, recent=[])
    update = update_user([ev("a1", "add_to_cart"), ev("a2", "add_to_cart", ts=1001.0),
                          ev("a1", "purchase", ts=1002.0, quantity=2)], state, CFG, WEIGHTS, {}, None)
    assert update.profile[rk.PROFILE_PURCHASED] == ["a1"] and update.profile[rk.PROFILE_CART] == ["a2"]
    emptied = update_user([ev("a2", "remove_from_cart", ts=1003.0)], UserState(update.profile, None, []), CFG,
                          WEIGHTS, {}, None)
    assert rk.PROFILE_CART not in emptied.profile and emptied.profile[rk.PROFILE_PURCHASED] == ["a1"]
    assert update.profile[rk.PROFILE_EVENTS] == 8
    bucket = int(1002.0 // CFG.trending_bucket_s)
    assert update.trending[(bucket, "a1")] == pytest.approx(WEIGHTS["add_to_cart"] + 2 * WEIGHTS["purchase"])


def test_co_views_pair_recent_items_within_the_window_only():
    state = UserState(profile={}, vector=None, recent=[("old", 1000.0 - CFG.co_view_window_s - 1), ("a1", 990.0)])
    update = update_user([ev("a2"), ev("a2", ts=1001.0), ev("b1", "purchase", ts=1002.0)], state, CFG, WEIGHTS,
                         {}, None)
    assert update.co_views == [("a2", "a1"), ("a2", "a1")]  # each view pairs once; never with itself


def test_trending_bucket_weights_halve_per_half_life():
    cfg = CFG.model_copy(update={"trending_bucket_s": 100, "trending_half_life_s": 100.0, "trending_buckets": 3})
    weights = bucket_weights(1050.0, cfg)
    assert weights == pytest.approx({10: 1.0, 9: 2 ** -0.5, 8: 2 ** -1.5})


def test_a_purchase_is_scaled_by_its_quantity_as_the_batch_scales_it():
    """events.quantity: a line of 100 counts once (ignore), 1 + ln 100 (log) or 100 times (linear)."""
    bulk = ev("a1", "purchase", quantity=100)
    got = {mode: update_user([bulk], EMPTY, CFG, WEIGHTS, {}, None, mode).trending for mode in QUANTITY_MODES}
    base = WEIGHTS["purchase"]
    assert [next(iter(got[m].values())) for m in QUANTITY_MODES] == pytest.approx(
        [base, base * (1 + math.log(100)), base * 100])
