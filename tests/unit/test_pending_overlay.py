"""Read your own writes, pure logic: which pending entries still count, and what the overlay makes of them."""

import time

import numpy as np
import pytest

from recsys.config import load_settings
from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import event_id_digest
from recsys.serving.pending_overlay import OverlayRules, overlay_pending
from recsys.serving.recommender import RecommendationQuery, Recommender
from recsys.speed.adjustments import ModelContext, SpeedEvent, UserState, update_user
from recsys.stores.online_store import RealtimeState
from recsys.stores.pending_events import PendingEvent, unapplied_events
from tests.unit.serving_fakes import FakeOnline, shop_model

pytestmark = pytest.mark.unit
SETTINGS = load_settings("test", environ={})
RULES = OverlayRules.from_settings(SETTINGS)
NOW = 1_800_000_000.0


def _entry(event_id: str, item: str, offset: int, kind: str = "view", partition: int = 0) -> dict:
    return {rk.PENDING_ID: event_id_digest(event_id), rk.PENDING_ITEM: item, rk.PENDING_TYPE: kind,
            rk.PENDING_TS: NOW - 10 + offset, rk.PENDING_QUANTITY: 1, rk.PENDING_TOPIC: "t",
            rk.PENDING_PARTITION: partition, rk.PENDING_OFFSET: offset}


def test_an_entry_stops_counting_once_the_state_holds_its_id_or_the_watermark_passes_its_offset():
    stored = [_entry("e4", "a4", 4), _entry("e3", "a3", 3, partition=1), _entry("e2", "a2", 2),
              _entry("e2", "a2", 2), _entry("e1", "a1", 1), None, {"junk": 1}]  # newest first, as in Redis
    kept = unapplied_events(stored, {("t", 0): 2}, [event_id_digest("e4")])
    assert [e.item_id for e in kept] == ["a3"]  # e1, e2 at or under partition 0's watermark, e4 by its id
    assert [e.item_id for e in unapplied_events(stored, {}, None)] == ["a1", "a2", "a3", "a4"]  # oldest first, once
    assert [e.item_id for e in unapplied_events(stored, {}, None, erased_at=NOW - 8)] == ["a3", "a4"]


def _pending(*events: tuple[str, str]) -> tuple[PendingEvent, ...]:
    return tuple(PendingEvent(f"d{n}", item, kind, NOW - 100 + n) for n, (item, kind) in enumerate(events))


def test_pending_purchase_cart_and_recent_items_overlay_the_state():
    state = RealtimeState(recent=["b1"], cart=["c1"], pending=_pending(
        ("a2", "add_to_cart"), ("a1", "view"), ("c1", "purchase"), ("a2", "remove_from_cart")))
    out = overlay_pending(state, shop_model(), "u9", RULES, NOW, 3)
    assert out.recent == ["a2", "c1", "a1"] and out.pending == ()
    assert out.purchased == {"c1"} and out.cart == []


def test_the_overlay_computes_what_the_stream_will_store():
    """Interests and the folded-in vector equal update_user's for the same events (the stream's own code)."""
    model = shop_model()
    events = [SpeedEvent("u1", "b1", "view", NOW - 30), SpeedEvent("u1", "c2", "add_to_cart", NOW - 20),
              SpeedEvent("u1", "b2", "purchase", NOW - 10, quantity=2)]
    catalogue = {item: (model.attributes.category_of(row), model.attributes.brand_of(row))
                 for item, row in model.item_index.items()}
    context = ModelContext("v1", model.fold_in, lambda user: model.user_factors[model.user_ids[user]])
    stream = update_user(events, UserState({}, None, []), SETTINGS.stream, SETTINGS.events.weights, catalogue,
                         context, SETTINGS.events.quantity)
    pending = tuple(PendingEvent(f"d{n}", e.item_id, e.event_type, e.ts, e.quantity) for n, e in enumerate(events))
    out = overlay_pending(RealtimeState(pending=pending), model, "u1", RULES, NOW, 10)
    expected = rk.current_interests(stream.profile, NOW, RULES.interest_half_life_s)
    assert out.interests.keys() == expected.keys()
    assert all(out.interests[k] == pytest.approx(v, rel=0.01) for k, v in expected.items())
    assert np.allclose(out.vector, rk.decode_vector(stream.vector, 2), atol=1e-2)
    assert out.vector[1] > model.user_factors[0][1]  # the bags moved a shoe lover's taste


def test_without_pending_events_the_state_is_untouched():
    state = RealtimeState(recent=["a1"])
    assert overlay_pending(state, shop_model(), "u1", RULES, NOW, 5) is state


def test_a_pending_purchase_is_excluded_and_moves_a_new_shoppers_list():
    """The recommender with overlay rules: the first GET after a POST already counts its events."""
    class Pending(FakeOnline):
        def user_state(self, *args):
            return RealtimeState(pending=_pending(("b1", "click"), ("b2", "purchase")))

    rec = Recommender(shop_model, Pending(), SETTINGS.serving, pending_rules=RULES, clock=time.time)
    items = [i.item_id for i in rec.recommend("new-shopper", RecommendationQuery(3)).items]
    assert "b2" not in items and items[0] in {"b3", "b1"}  # bags first; the purchase excluded
    plain = Recommender(shop_model, Pending(), SETTINGS.serving)  # without the overlay: popularity, b2 included
    assert "b2" in [i.item_id for i in plain.recommend("new-shopper", RecommendationQuery(3)).items]
