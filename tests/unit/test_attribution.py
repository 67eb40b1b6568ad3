import pytest

from recsys.config import load_settings
from recsys.contracts.events import Event
from recsys.contracts.served import CONTEXT_REC_ID, CONTEXT_VARIANT, ServedRecommendation
from recsys.services.attribution import Attribution, RedisServedMemory, attribute
from tests.unit.serving_fakes import DownRedis

pytestmark = pytest.mark.unit


def _event(user: str, item: str, event_type: str = "click", context: dict | None = None) -> Event:
    return Event(user_id=user, item_id=item, event_type=event_type, context=context)


def test_events_on_served_items_gain_the_list_and_variant_the_rest_pass_unchanged():
    served = {"u1": {"i1": Attribution("r1", "control")}, "u2": {"i9": Attribution("r2", "live-boost")}}
    calls = []

    def lookup(wanted):
        calls.append({u: set(items) for u, items in wanted.items()})
        return served

    events = [_event("u1", "i1", context={"page": "home", CONTEXT_VARIANT: "forged"}), _event("u1", "i2"),
              _event("u2", "i1"), _event("u2", "i9", "purchase")]
    out = attribute(events, lookup)
    assert calls == [{"u1": {"i1", "i2"}, "u2": {"i1", "i9"}}]  # one lookup for every user
    assert out[0].context == {"page": "home", CONTEXT_REC_ID: "r1", CONTEXT_VARIANT: "control"}
    assert out[1] is events[1] and out[2] is events[2]
    assert out[3].context == {CONTEXT_REC_ID: "r2", CONTEXT_VARIANT: "live-boost"}
    assert out[3].event_id == events[3].event_id and events[3].context is None  # events are frozen copies
    assert attribute([], lookup) == [] and len(calls) == 1


def test_redis_errors_leave_events_unattributed_and_never_raise():
    settings = load_settings("test", environ={})
    memory = RedisServedMemory(settings.experiments, settings.redis, client=DownRedis())
    events = [_event("u1", "i1")]
    assert attribute(events, memory.lookup) == events
    served = ServedRecommendation(user_id="u1", experiment="e", variant="v", item_ids=["i1"])
    assert memory.remember(served) is False
    assert memory.errors == 2
