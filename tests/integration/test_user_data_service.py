"""History and forgetting a user on a real Redis (state written by the speed layer's own writer) and real
Delta tables in a temp dir; each layer down in turn."""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from recsys.als.foldin import FoldIn
from recsys.config import load_settings
from recsys.contracts.catalogue import UserAttributes
from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.tables import USER_DATA_TABLES
from recsys.services.user_data import DELTA, REDIS, HistoryUnavailableError, UserDataService
from recsys.speed.adjustments import ModelContext, SpeedEvent
from recsys.stores.attribute_store import DeltaAttributeStore
from recsys.stores.erasure_store import DeltaErasureStore
from recsys.stores.user_state import RedisUserStateStore
from tests.integration.conftest import shop_events

pytestmark = pytest.mark.integration
NOTHING = {spec.name: 0 for spec in USER_DATA_TABLES}  # what forgetting an unknown user deletes
CATALOGUE = {"a1": ("shoes", "acme"), "a2": ("shoes", "zed"), "b1": ("hats", "acme")}
MODEL = ModelContext("v1", FoldIn(["a1", "a2", "b1"], np.eye(3)), lambda user: None)


@pytest.fixture
def lake(tmp_path, settings, redis_client):
    """This test's own Delta root, the run's Redis namespace (cleaned up by redis_client)."""
    environ = {**os.environ, "RECSYS__STORAGE__DELTA_ROOT": str(tmp_path / "delta"),
               "RECSYS__REDIS__KEY_PREFIX": settings.redis.key_prefix}
    return load_settings("test", environ=environ)


def shop(settings, user: str, start: float) -> None:
    """The user's real-time state, as the stream leaves it, and the same events in bronze."""
    events = [SpeedEvent(user, "a1", "view", start, "s1"), SpeedEvent(user, "a2", "add_to_cart", start + 60, "s1"),
              SpeedEvent(user, "b1", "purchase", start + 120, "s1"), SpeedEvent(user, "b1", "view", start + 180, "s1")]
    shop_events(settings, events, CATALOGUE, MODEL)


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def test_history_shows_the_real_time_state_and_the_latest_events(lake):
    user, start = new_user(), float(int(time.time()) - 600)
    shop(lake, user, start)
    history = UserDataService(lake).history(user, limit=2, now=start + 180)
    assert not history.degraded
    realtime = history.realtime
    assert [r["item_id"] for r in realtime["recent"]] == ["b1", "a2", "a1"]
    assert realtime["recent"][0]["ts"] == datetime.fromtimestamp(start + 180, UTC).isoformat().replace("+00:00", "Z")
    assert (realtime["purchases"], realtime["cart"]) == (["b1"], ["a2"])
    assert realtime["sessions"][0] | {"started_at": None, "last_at": None} == {
        "session_id": "s1", "seconds": 180, "events": 4, "started_at": None, "last_at": None}
    kinds = {(i["kind"], i["value"]) for i in realtime["interests"]}
    assert {("category", "hats"), ("category", "shoes"), ("brand", "acme")} <= kinds
    weights = [i["weight"] for i in realtime["interests"]]
    assert weights == sorted(weights, reverse=True)
    assert (realtime["events_applied"], realtime["model_version"], realtime["has_vector"]) == (4, "v1", True)
    assert [(e["item_id"], e["event_type"]) for e in history.events] == [("b1", "view"), ("b1", "purchase")]
    body = history.to_dict()
    assert body["degraded"] is False and isinstance(body["events"][0]["ts"], str)


def test_history_without_a_limit_reads_only_redis_and_an_unknown_user_is_empty(lake):
    history = UserDataService(lake).history(new_user())
    assert history.events is None and not history.degraded
    assert history.realtime["recent"] == [] and history.realtime["events_applied"] == 0
    with pytest.raises(ValueError):
        UserDataService(lake).history("bad id")
    with pytest.raises(ValueError):
        UserDataService(lake).history(new_user(), limit=lake.delta_rs.max_history_events + 1)


def test_history_with_redis_down_is_delta_only_and_degraded(lake):
    user = new_user()
    shop(lake, user, time.time() - 600)
    down = RedisUserStateStore(lake.redis.model_copy(update={"url": "redis://127.0.0.1:1/0"}))
    history = UserDataService(lake, state=down).history(user, limit=10)
    assert history.degraded and history.unavailable == (REDIS,) and history.realtime is None
    assert len(history.events) == 4
    with pytest.raises(HistoryUnavailableError):
        UserDataService(lake, state=down).history(user)  # Redis was the only source asked for


class BrokenLog:
    def latest_events(self, user_id: str, limit: int) -> list[dict]:
        raise OSError("object store unreachable")


def test_history_with_delta_down_is_redis_only_and_degraded(lake):
    user = new_user()
    shop(lake, user, time.time() - 600)
    history = UserDataService(lake, log_store=BrokenLog()).history(user, limit=10)
    assert history.degraded and history.unavailable == (DELTA,) and history.events is None
    assert len(history.realtime["recent"]) == 3


def test_forgetting_a_user_removes_their_redis_keys_and_rows_and_records_it(lake, redis_client):
    user = new_user()
    neighbour = f"{user}:x"  # ids may contain ':' - its keys share the user's key pattern
    shop(lake, user, time.time() - 600)
    shop(lake, neighbour, time.time() - 600)
    DeltaAttributeStore(lake).upsert_users([UserAttributes(user_id=user), UserAttributes(user_id=neighbour)])
    before = datetime.now(UTC)
    removed = UserDataService(lake).forget_user(user)
    assert removed == {"redis_keys": 2, "delta_rows": NOTHING | {"events_bronze": 4, "users": 1}}
    keys = RedisKeys(lake.redis.key_prefix)
    assert not any(redis_client.exists(k) for k in keys.user_keys(user))
    assert redis_client.exists(keys.recent_items(neighbour), keys.profile(neighbour)) == 2
    erasures = DeltaErasureStore(lake).erasures()
    assert [e["user_id"] for e in erasures] == [user] and erasures[0]["erased_at"] >= before
    history = UserDataService(lake).history(user, limit=10)
    assert history.events == [] and history.realtime["recent"] == []
    assert len(UserDataService(lake).history(neighbour, limit=10).events) == 4
    again = UserDataService(lake).forget_user(user)  # idempotent
    assert again == {"redis_keys": 0, "delta_rows": NOTHING}


def test_forgetting_fails_loudly_when_redis_is_down_and_can_be_finished_later(lake):
    user = new_user()
    shop(lake, user, time.time() - 600)
    down = RedisUserStateStore(lake.redis.model_copy(update={"url": "redis://127.0.0.1:1/0"}))
    with pytest.raises(redis.ConnectionError):
        UserDataService(lake, state=down).forget_user(user)
    assert [e["user_id"] for e in DeltaErasureStore(lake).erasures()] == [user]  # recorded before anything else
    removed = UserDataService(lake).forget_user(user)
    assert removed["redis_keys"] == 2 and removed["delta_rows"]["events_bronze"] == 4
    assert datetime.now(UTC) - DeltaErasureStore(lake).erasures()[-1]["erased_at"] < timedelta(minutes=1)
