"""The ingest gate: slots, a bounded queue for them, and a bounded wait."""

import threading
import time

import pytest

from recsys.ingest.gate import IngestBusyError, IngestGate

pytestmark = pytest.mark.unit


def _hold(gate: IngestGate, entered: threading.Event, release: threading.Event, outcome: list) -> None:
    try:
        with gate.slot():
            entered.set()
            release.wait(5)
        outcome.append("served")
    except IngestBusyError:
        outcome.append("busy")


def _held(gate: IngestGate) -> tuple[threading.Thread, threading.Event, list]:
    """A post holding the gate's only slot until the returned event is set."""
    entered, release, outcome = threading.Event(), threading.Event(), []
    holder = threading.Thread(target=_hold, args=(gate, entered, release, outcome))
    holder.start()
    assert entered.wait(5)
    return holder, release, outcome


def test_a_post_beyond_the_slots_and_the_queue_is_refused_at_once():
    gate = IngestGate(slots=1, queue=0, wait_s=5.0)
    holder, release, first = _held(gate)
    started = time.monotonic()
    with pytest.raises(IngestBusyError, match="ingest_queue"), gate.slot():
        pass
    assert time.monotonic() - started < 1.0  # refused at once, not after the wait
    release.set()
    holder.join(5)
    assert first == ["served"]


def test_a_queued_post_gets_the_slot_when_it_frees():
    gate = IngestGate(slots=1, queue=1, wait_s=5.0)
    holder, release, first = _held(gate)
    queued_entered, queued_release, queued = threading.Event(), threading.Event(), []
    waiter = threading.Thread(target=_hold, args=(gate, queued_entered, queued_release, queued))
    waiter.start()
    assert not queued_entered.wait(0.2)  # it waits: the only slot is held
    release.set()
    assert queued_entered.wait(5)  # the queued post got the freed slot
    queued_release.set()
    holder.join(5)
    waiter.join(5)
    assert first == queued == ["served"]


def test_a_queued_post_gives_up_after_the_wait():
    gate = IngestGate(slots=1, queue=1, wait_s=0.2)
    holder, release, _ = _held(gate)
    started = time.monotonic()
    with pytest.raises(IngestBusyError, match="ingest_wait_s"), gate.slot():
        pass
    assert 0.15 < time.monotonic() - started < 2.0
    release.set()
    holder.join(5)
    with gate.slot():  # every slot and queue place was given back
        pass
