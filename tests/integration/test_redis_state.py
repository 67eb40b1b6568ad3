"""The speed layer's Redis writer on a real Redis: exactly once per chunk, and riding out an outage."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest
import redis

from recsys.als.foldin import FoldIn
from recsys.contracts import redis_keys as rk
from recsys.contracts.redis_keys import RedisKeys, decode_vector
from recsys.speed.adjustments import ModelContext, SpeedEvent
from recsys.speed.redis_state import RedisStateWriter
from tests.integration.conftest import events_applied, stored_profile

pytestmark = pytest.mark.integration
ITEMS = ["a1", "a2", "b1", "b2"]
MODEL = ModelContext("v1", FoldIn(ITEMS, np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])), lambda user: None)


def _events(user: str, n: int, start: float | None = None) -> list[SpeedEvent]:
    start = start or time.time() - n
    return [SpeedEvent(user, ITEMS[i % 4], "view" if i % 3 else "click", start + i) for i in range(n)]


def test_a_replayed_chunk_changes_nothing(settings, redis_client):
    user, keys = f"once-{uuid.uuid4().hex[:8]}", RedisKeys(settings.redis.key_prefix)
    writer = RedisStateWriter(settings, {"a1": ("shoes", "acme")}, MODEL)
    events = _events(user, 7)
    first = writer.apply(events, "q-test", 3, 0)
    trending_before = redis_client.zscore(keys.trending_bucket(int(events[0].ts // settings.stream.trending_bucket_s)),
                                          "a1")
    again = writer.apply(events, "q-test", 3, 0)  # Spark replays batch 3 after a crash
    assert (first.applied, first.replayed, again.applied, again.replayed) == (7, 0, 0, 7)
    fields, vector = stored_profile(settings, user)
    assert (fields[rk.PROFILE_EVENTS], fields[rk.PROFILE_MODEL]) == (7, "v1") and len(vector) == 4
    assert redis_client.zscore(keys.trending_bucket(int(events[0].ts // settings.stream.trending_bucket_s)),
                               "a1") == trending_before
    assert set(redis_client.zrange(keys.recent_items(user), 0, -1)) == set(ITEMS)
    assert redis_client.zscore(keys.co_views("a2"), "a1") >= 1
    assert 0 < redis_client.ttl(keys.profile(user)) <= settings.redis.user_ttl_s
    writer.apply(_events(user, 2), "q-test", 4, 0)  # the next batch is applied
    assert events_applied(settings, user) == 9
    writer.close()


def test_the_folded_in_vector_is_readable_by_serving(settings, redis_client):
    from recsys.stores.online_store import RedisOnlineStore

    user = f"vec-{uuid.uuid4().hex[:8]}"
    writer = RedisStateWriter(settings, {}, MODEL)
    writer.apply([SpeedEvent(user, "b1", "click", time.time())], "q-vec", 0, 0)
    store = RedisOnlineStore(settings.redis)
    vector = store.user_vector(user, "v1", 2)
    assert vector is not None and vector[1] > 0 and store.user_vector(user, "v2", 2) is None
    writer.close()


@pytest.fixture
def private_redis(settings):
    """A Redis of this test's own, so pausing it leaves the shared one alone."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by `make setup`"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, decode_responses=True)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    cfg = settings.model_copy(update={
        "redis": settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{port}/0"}),
        "stream": settings.stream.model_copy(update={"redis_retry_s": 30.0})})
    yield proc, client, cfg
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait(10)


def test_redis_unavailable_for_a_while_is_retried_and_nothing_is_lost(private_redis):
    proc, _, cfg = private_redis
    user = "paused-user"
    writer = RedisStateWriter(cfg, {}, MODEL, client=redis.Redis.from_url(cfg.redis.url, socket_timeout=0.5))
    os.kill(proc.pid, signal.SIGSTOP)  # Redis stops answering: commands time out
    result = {}
    worker = threading.Thread(target=lambda: result.update(stats=writer.apply(_events(user, 20), "q-pause", 0, 0)))
    worker.start()
    time.sleep(3)
    assert worker.is_alive()  # still retrying, not failed, not given up
    os.kill(proc.pid, signal.SIGCONT)
    worker.join(30)
    assert result["stats"].applied + result["stats"].replayed == 20
    assert events_applied(cfg, user) == 20


def test_redis_down_past_the_retry_budget_fails_the_batch_and_the_replay_applies_it(private_redis):
    proc, _, cfg = private_redis
    cfg = cfg.model_copy(update={"stream": cfg.stream.model_copy(update={"redis_retry_s": 1.0})})
    user = "down-user"
    writer = RedisStateWriter(cfg, {}, MODEL, client=redis.Redis.from_url(cfg.redis.url, socket_timeout=0.3))
    os.kill(proc.pid, signal.SIGSTOP)
    with pytest.raises(redis.RedisError):
        writer.apply(_events(user, 5), "q-down", 0, 0)
    os.kill(proc.pid, signal.SIGCONT)
    writer.apply(_events(user, 5), "q-down", 0, 0)  # the query restarts and replays batch 0
    assert events_applied(cfg, user) == 5
    assert decode_vector(stored_profile(cfg, user)[1], 2) is not None


def _kafka_events(user: str, topic: str, offsets: range, ids: list[str] | None = None,
                  ingested_at: float | None = None, partition: int = 0) -> list[SpeedEvent]:
    """Events as the realtime query decodes them: with Kafka coordinates, an event_id and an ingestion time."""
    now = time.time()
    return [SpeedEvent(user, ITEMS[o % 4], "view", now - 10 + n, None, 1, (ids or [f"e{o}" for o in offsets])[n],
                       topic, partition, o, ingested_at or now) for n, o in enumerate(offsets)]


def test_a_replay_after_the_markers_expired_or_under_a_new_query_id_is_not_applied_twice(settings, redis_client):
    user, topic = f"wm-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:6]}"
    keys = RedisKeys(settings.redis.key_prefix)
    writer = RedisStateWriter(settings, {}, MODEL)
    assert writer.apply(_kafka_events(user, topic, range(0, 6)), "q-old", 0, 0).applied == 6
    for key in redis_client.scan_iter(keys.applied_marker("q-old", "*", "*")):
        redis_client.delete(key)  # the markers' TTL ran out (Kafka still holds the events for days)
    again = writer.apply(_kafka_events(user, topic, range(0, 6)), "q-old", 0, 0)
    fresh = writer.apply(_kafka_events(user, topic, range(0, 8)), "q-new", 0, 0)  # a lost checkpoint: new query id
    assert (again.applied, again.replayed, fresh.applied, fresh.replayed) == (0, 6, 2, 6)
    assert events_applied(settings, user) == 8
    assert redis_client.ttl(keys.stream_offset(rk.REALTIME_QUERY, topic, 0)) == -1  # no TTL
    writer.close()


def test_a_replay_that_hands_the_kafka_partitions_to_other_spark_tasks_applies_each_event_once(
        settings, redis_client):
    """Spark numbers a micro-batch's tasks in whatever order it lists the Kafka partitions, and a replay after a
    crash may list them in another: the marker must name the records a chunk holds, not the task's number."""
    alice, bob, topic = f"al-{uuid.uuid4().hex[:8]}", f"bo-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:6]}"
    writer = RedisStateWriter(settings, {}, MODEL)
    of_alice = _kafka_events(alice, topic, range(0, 4), partition=0)
    of_bob = _kafka_events(bob, topic, range(0, 3), partition=1)
    assert writer.apply(of_alice, "q-order", 5, 0).applied == 4  # task 0 read partition 0; killed before task 1
    bob_first = writer.apply(of_bob, "q-order", 5, 0)  # the replay's task 0 reads partition 1 ...
    alice_again = writer.apply(of_alice, "q-order", 5, 1)  # ... and its task 1 partition 0
    assert (bob_first.applied, alice_again.applied, alice_again.replayed) == (3, 0, 4)
    assert (events_applied(settings, alice), events_applied(settings, bob)) == (4, 3)
    writer.close()


def test_a_client_retry_with_the_same_event_id_is_applied_once_and_other_users_ids_do_not_collide(
        settings, redis_client):
    alice, bob, topic = f"al-{uuid.uuid4().hex[:8]}", f"bo-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:6]}"
    writer = RedisStateWriter(settings, {}, MODEL)
    first = writer.apply(_kafka_events(alice, topic, range(0, 2), ["1", "2"]), "q-retry", 0, 0)
    # The client got a 503 and sent both again; they are new Kafka records, at new offsets, in a later batch.
    retry = writer.apply(_kafka_events(alice, topic, range(2, 5), ["1", "2", "3"]), "q-retry", 1, 0)
    other = writer.apply(_kafka_events(bob, topic, range(5, 7), ["1", "2"]), "q-retry", 2, 0)
    assert (first.applied, retry.applied, retry.duplicates, other.applied, other.duplicates) == (2, 1, 2, 2, 0)
    assert (events_applied(settings, alice), events_applied(settings, bob)) == (3, 2)
    writer.close()


def test_events_of_an_erased_user_ingested_before_the_erasure_are_dropped_even_when_future_dated(
        settings, redis_client):
    user, topic = f"er-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:6]}"
    keys = RedisKeys(settings.redis.key_prefix)
    erased_at = time.time()
    redis_client.hset(keys.erased_users(), user, erased_at)
    before = [SpeedEvent(user, "a1", "view", erased_at + 7200, None, 1, f"f{o}", topic, 0, o, erased_at - 5)
              for o in range(3)]  # posted before the erasure, dated two hours ahead
    after = _kafka_events(user, topic, range(3, 5), ingested_at=erased_at + 1)  # the shopper came back
    writer = RedisStateWriter(settings, {}, MODEL)
    dropped = writer.apply(before, "q-erase", 0, 0)
    assert (dropped.applied, dropped.erased) == (0, 3)
    assert redis_client.exists(keys.profile(user)) == 0  # nothing of them is recreated
    assert writer.apply(after, "q-erase", 1, 0).applied == 2
    assert events_applied(settings, user) == 2
    writer.close()
