import pytest
from confluent_kafka import KafkaError, KafkaException

from recsys.config import load_settings
from recsys.contracts.served import ServedRecommendation
from recsys.ingest.served_recorder import (
    DELIVERED,
    DROPPED_QUEUE_FULL,
    DROPPED_UNDELIVERED,
    QUEUED,
    KafkaServedRecorder,
    RecorderStats,
)

pytestmark = pytest.mark.unit
SERVED = ServedRecommendation(user_id="u1", experiment="e", variant="v", item_ids=["i1", "i2"])


class FakeProducer:
    """Queues up to `room` records; poll() delivers them with `error` (None = acknowledged)."""

    def __init__(self, room: int, error: KafkaError | None = None, refuse: bool = False) -> None:
        self.room, self.error, self.refuse = room, error, refuse
        self.pending: list = []
        self.sent: list = []

    def produce(self, topic, key=None, value=None, on_delivery=None):
        if self.refuse:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG))
        if len(self.pending) >= self.room:
            raise BufferError("Local: Queue full")
        self.pending.append((topic, key, value, on_delivery))

    def poll(self, timeout=None):
        delivered, self.pending = self.pending, []
        for topic, key, value, callback in delivered:
            self.sent.append((topic, key, value))
            callback(self.error, None)
        return len(delivered)

    def flush(self, timeout=None):
        return len(self.pending)


def _recorder(producer, listener=None) -> KafkaServedRecorder:
    settings = load_settings("test", environ={})
    return KafkaServedRecorder(settings.kafka, settings.experiments, "t-served", producer=producer, listener=listener)


def test_records_are_keyed_by_user_and_counted_when_delivered():
    producer, outcomes = FakeProducer(room=10), []
    recorder = _recorder(producer, outcomes.append)
    assert recorder.record(SERVED) is True
    assert producer.sent == [("t-served", b"u1", SERVED.to_json().encode())]
    assert recorder.stats() == RecorderStats(queued=1, delivered=1)
    assert outcomes == [DELIVERED, QUEUED]  # the callback runs in the poll after produce


def test_a_full_queue_or_a_refusing_producer_drops_without_raising():
    producer = FakeProducer(room=0)
    recorder = _recorder(producer)
    assert recorder.record(SERVED) is False and recorder.record(SERVED) is False
    assert recorder.stats() == RecorderStats(dropped_queue_full=2)
    refusing = _recorder(FakeProducer(room=5, refuse=True))
    assert refusing.record(SERVED) is False and refusing.stats().dropped == 1


def test_undelivered_records_and_those_left_at_shutdown_count_as_dropped():
    recorder = _recorder(FakeProducer(room=10, error=KafkaError(KafkaError._MSG_TIMED_OUT)))
    recorder.record(SERVED)
    assert recorder.stats() == RecorderStats(queued=1, dropped_undelivered=1)

    class Stuck(FakeProducer):
        def poll(self, timeout=None):
            return 0

    stuck = _recorder(Stuck(room=10))
    stuck.record(SERVED)
    stuck.record(SERVED)
    stuck.close(0.01)
    assert stuck.stats() == RecorderStats(queued=2, dropped_undelivered=2)


def test_a_failing_listener_does_not_fail_the_request():
    def broken(outcome):
        raise RuntimeError("metrics broke")

    assert _recorder(FakeProducer(room=0), broken).record(SERVED) is False
    assert DROPPED_QUEUE_FULL and DROPPED_UNDELIVERED  # names exported for metrics labels
