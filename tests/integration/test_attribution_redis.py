"""Attribution and the served-record producer on the real Redis and Kafka (no Spark)."""

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer

from recsys.contracts.events import Event
from recsys.contracts.redis_keys import RedisKeys
from recsys.contracts.served import CONTEXT_REC_ID, CONTEXT_VARIANT, ServedRecommendation
from recsys.ingest.served_recorder import KafkaServedRecorder
from recsys.kafka.topics import served_topic
from recsys.services.attribution import RedisServedMemory, attribute
from recsys.services.write_behind import WriteBehindMemory

pytestmark = pytest.mark.integration


def _served(user: str, items: list[str], variant: str = "control") -> ServedRecommendation:
    return ServedRecommendation(user_id=user, experiment="exp", variant=variant, item_ids=items)


def test_events_after_a_served_list_are_attributed_to_the_latest_list_that_showed_the_item(settings, redis_client):
    memory = RedisServedMemory(settings.experiments, settings.redis)
    user = f"attr-{uuid.uuid4().hex[:8]}"
    first, second = _served(user, ["i1", "i2"]), _served(user, ["i2", "i3"], "live-boost")
    assert memory.remember(first) and memory.remember(second)
    key = RedisKeys(settings.redis.key_prefix).served(user)
    assert 0 < redis_client.ttl(key) <= settings.experiments.attribution_window_s

    events = [Event(user_id=user, item_id=item, event_type="click") for item in ("i1", "i2", "i3", "i4")]
    out = attribute(events, memory.lookup)
    assert [(e.context or {}).get(CONTEXT_REC_ID) for e in out] == [first.rec_id, second.rec_id, second.rec_id, None]
    assert out[1].context[CONTEXT_VARIANT] == "live-boost"

    later = time.time() + settings.experiments.attribution_window_s + 1  # past the window: nothing is attributed
    assert memory.lookup({user: ["i1", "i2"]}, now=later) == {}


def test_remembered_items_are_capped_and_forgotten_with_the_user(settings, redis_client):
    cfg = settings.experiments.model_copy(update={"served_items_max": 3})
    memory = RedisServedMemory(cfg, settings.redis)
    user = f"cap-{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(settings.redis.key_prefix)
    memory.remember(_served(user, ["i1", "i2"]))
    memory.remember(_served(user, ["i3", "i4"]))  # 4 > 3: only this list is kept
    assert set(redis_client.hkeys(keys.served(user))) == {"i3", "i4"}
    assert redis_client.delete(*keys.user_keys(user)) == 1
    assert memory.lookup({user: ["i3"]}) == {}


def _script_exists_calls(client) -> int:
    return client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)


def test_several_lists_in_one_pipeline_are_remembered_after_redis_lost_its_scripts(settings, redis_client):
    memory = RedisServedMemory(settings.experiments, settings.redis)
    users = [f"pipe-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    assert memory.remember(_served(users[0], ["i0"]))  # the script is loaded and its digest kept
    redis_client.script_flush()  # what a Redis restart does to loaded scripts
    lists = [_served(user, ["i1", "i2"]) for user in users]
    exists_before = _script_exists_calls(redis_client)
    assert memory.remember_many(lists)
    assert _script_exists_calls(redis_client) == exists_before  # EVALSHA as it is: no SCRIPT EXISTS round trip
    found = memory.lookup({user: ["i1", "i2"] for user in users})
    assert {user: {item: a.rec_id for item, a in found[user].items()} for user in users} == {
        served.user_id: {"i1": served.rec_id, "i2": served.rec_id} for served in lists}
    assert memory.errors == 0


def test_write_behind_memory_remembers_every_list_of_many_threads_in_order(settings, redis_client):
    memory = WriteBehindMemory(RedisServedMemory(settings.experiments, settings.redis), 10_000, 1.0)
    users = [f"wb-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    lists = {user: [_served(user, ["i1", f"i{n}"]) for n in range(2, 27)] for user in users}

    def serve(user: str) -> None:
        for served in lists[user]:
            assert memory.remember(served)  # queued, never waits for Redis

    threads = [threading.Thread(target=serve, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = memory.lookup({user: ["i1", "i2", "i26"] for user in users})  # waits for this worker's queue
    for user in users:  # the latest list that showed an item wins, as when each list was written at once
        assert found[user]["i1"].rec_id == lists[user][-1].rec_id
        assert found[user]["i2"].rec_id == lists[user][0].rec_id
        assert found[user]["i26"].rec_id == lists[user][-1].rec_id
    keys = RedisKeys(settings.redis.key_prefix)
    assert {redis_client.hlen(keys.served(user)) for user in users} == {26}
    assert memory.errors == 0
    memory.close(1.0)


def test_a_full_write_behind_queue_drops_and_counts_and_close_sends_what_is_queued(settings, redis_client):
    memory = RedisServedMemory(settings.experiments, settings.redis)
    release = threading.Event()
    real_send = memory.remember_many

    def held_send(batch):  # Redis is slow: the writer is busy with the first list until released
        release.wait(5.0)
        return real_send(batch)

    memory.remember_many = held_send
    behind = WriteBehindMemory(memory, max_queued=2, flush_wait_s=0.0)
    user = f"wbq-{uuid.uuid4().hex[:8]}"
    first = _served(user, ["i0"])
    assert behind.remember(first)
    deadline = time.monotonic() + 5.0
    while behind._queue and time.monotonic() < deadline:  # the writer has taken the first list
        time.sleep(0.01)
    results = [behind.remember(_served(user, [f"i{n}"])) for n in range(1, 5)]
    assert results == [True, True, False, False] and memory.errors == 2
    assert not behind.flush(0.05)  # still held: flush says so instead of waiting on
    release.set()
    behind.close(5.0)
    assert set(redis_client.hkeys(RedisKeys(settings.redis.key_prefix).served(user))) == {"i0", "i1", "i2"}
    assert not behind.remember(_served(user, ["i9"]))  # closed: nothing is queued that would never be sent


def test_served_records_reach_the_served_topic(settings, topics):
    recorder = KafkaServedRecorder.from_settings(settings)
    user = f"rec-{uuid.uuid4().hex[:8]}"
    served = _served(user, ["i1", "i2"])
    assert recorder.record(served)
    recorder.close(10.0)
    assert recorder.stats().delivered == 1
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"t-{user}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([served_topic(settings)])
    found = None
    deadline = time.time() + 30
    while found is None and time.time() < deadline:
        for message in consumer.consume(100, timeout=2.0):
            if message.error() is None and message.key() == user.encode():
                found = ServedRecommendation.model_validate_json(message.value())
    consumer.close()
    assert found is not None and found.model_dump(exclude={"ts"}) == served.model_dump(exclude={"ts"})
    assert abs((found.ts - served.ts).total_seconds()) < 0.001  # the wire keeps milliseconds


def test_a_broker_that_is_down_never_slows_or_fails_a_request(settings):
    down = settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})
    cfg = settings.experiments.model_copy(update={"recorder": settings.experiments.recorder.model_copy(
        update={"queue_max_messages": 5, "delivery_timeout_s": 1.0})})
    recorder = KafkaServedRecorder(down, cfg, served_topic(settings))
    started = time.monotonic()
    results = [recorder.record(_served("u1", ["i1"])) for _ in range(20)]
    assert time.monotonic() - started < 1.0
    assert results.count(True) == 5 and recorder.stats().dropped_queue_full == 15
    recorder.close(3.0)
    assert recorder.stats().dropped_undelivered == 5 and recorder.stats().delivered == 0
