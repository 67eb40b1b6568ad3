"""Read your own writes on real Kafka and Redis: POST /v1/events counts on the shopper's very next GET, before the
stream (not running here) applies it; once the stream's writer has applied it, it counts once; entries expire."""

import time
import uuid

import pytest

from recsys.contracts.redis_keys import PROFILE_EVENTS, RedisKeys, decode_pending
from recsys.speed.adjustments import SpeedEvent
from recsys.speed.redis_state import RedisStateWriter
from recsys.stores.online_store import RedisOnlineStore
from recsys.stores.pending_events import RedisPendingEvents
from tests.integration.conftest import stored_profile
from tests.integration.test_api_endpoints import RECS, client, lake, model, with_  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


def _ids(api, user: str) -> list[str]:
    answer = api.get(RECS.format(user) + "?k=10")
    assert answer.status_code == 200, answer.json
    return [item["item_id"] for item in answer.json["items"]]


def _store(settings) -> RedisOnlineStore:
    pending = RedisPendingEvents(settings.redis, settings.kafka.events_topic, settings.kafka.topic_partitions)
    return RedisOnlineStore(settings.redis, pending=pending)


def test_a_purchase_is_excluded_on_the_very_next_get_and_a_new_shoppers_list_changes(lake, model, redis_client):  # noqa: F811
    api = client(lake)
    bought = _ids(api, "u1")[0]
    posted = api.post("/v1/events", json={"user_id": "u1", "item_id": bought, "event_type": "purchase"})
    assert posted.status_code == 202
    assert bought not in _ids(api, "u1")

    shopper = f"new-{uuid.uuid4().hex[:8]}"
    before = _ids(api, shopper)
    views = [{"user_id": shopper, "item_id": f"i{n}", "event_type": "view"} for n in (7, 8, 9)]
    assert api.post("/v1/events", json=views).status_code == 202
    assert _ids(api, shopper) != before
    key = RedisKeys(lake.redis.key_prefix).pending(shopper)
    assert redis_client.llen(key) == 3 and 0 < redis_client.ttl(key) <= lake.redis.pending_ttl_s
    assert decode_pending(redis_client.lindex(key, 0))["i"] == "i9"  # newest first


def test_an_event_pending_and_applied_by_the_stream_counts_once(lake, model, redis_client):  # noqa: F811
    api, store = client(lake), _store(lake)
    user = f"once-{uuid.uuid4().hex[:8]}"
    posted = api.post("/v1/events", json=[{"user_id": user, "item_id": "i3", "event_type": "view"},
                                          {"user_id": user, "item_id": "i4", "event_type": "view"}])
    ids = posted.json["event_ids"]
    assert [e.item_id for e in store.user_state(user, None, 8, 10, 3600).pending] == ["i3", "i4"]

    # The stream applies the first by its event id (a record without Kafka coordinates), then the second by
    # offset (the watermark of its partition, set in the same transaction as the state).
    raw = redis_client.lrange(RedisKeys(lake.redis.key_prefix).pending(user), 0, -1)
    second = decode_pending(raw[0])
    writer = RedisStateWriter(lake, {}, None)
    writer.apply([SpeedEvent(user, "i3", "view", time.time(), event_id=ids[0])], "q-own", 0, 0)
    assert [e.item_id for e in store.user_state(user, None, 8, 10, 3600).pending] == ["i4"]
    writer.apply([SpeedEvent(user, "i4", "view", time.time(), topic=second["k"], partition=second["p"],
                             offset=second["o"])], "q-own", 1, 0)
    writer.close()
    state = store.user_state(user, None, 8, 10, 3600)
    assert state.pending == () and state.recent == ["i4", "i3"]
    assert stored_profile(lake, user)[0][PROFILE_EVENTS] == 2


def test_pending_entries_are_bounded_and_expire(lake, model, redis_client):  # noqa: F811
    short = with_(lake, redis={"pending_ttl_s": 1, "pending_max": 3})
    api, store = client(short), _store(short)
    user = f"gone-{uuid.uuid4().hex[:8]}"
    views = [{"user_id": user, "item_id": f"i{n}", "event_type": "view"} for n in range(5)]
    assert api.post("/v1/events", json=views).status_code == 202
    assert [e.item_id for e in store.user_state(user, None, 8, 10, 3600).pending] == ["i2", "i3", "i4"]
    time.sleep(1.5)
    assert store.user_state(user, None, 8, 10, 3600).pending == ()
    assert redis_client.exists(RedisKeys(short.redis.key_prefix).pending(user)) == 0


def test_with_redis_down_events_are_accepted_and_serving_is_degraded(lake, model):  # noqa: F811
    api = client(with_(lake, redis={"url": "redis://127.0.0.1:1/0"}))  # nothing listens: refused at once
    assert api.post("/v1/events", json={"user_id": "u1", "item_id": "i1", "event_type": "view"}).status_code == 202
    answer = api.get(RECS.format("u1"))
    assert answer.status_code == 200 and answer.json["degraded"] and answer.json["items"]
