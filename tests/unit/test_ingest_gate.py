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


@pytest.mark.parametrize(("queue", "wait_s", "refusal", "at_least", "at_most"), [
    (0, 5.0, "ingest_queue", 0.0, 1.0),  # slots and queue full: refused at once, not after the wait
    (1, 0.2, "ingest_wait_s", 0.15, 2.0),  # queued, but the slot did not come free in time
])
def test_a_post_that_gets_no_slot_is_refused(queue, wait_s, refusal, at_least, at_most):
    gate = IngestGate(slots=1, queue=queue, wait_s=wait_s)
    holder, release, first = _held(gate)
    started = time.monotonic()
    with pytest.raises(IngestBusyError, match=refusal), gate.slot():
        pass
    assert at_least <= time.monotonic() - started < at_most
    release.set()
    holder.join(5)
    assert first == ["served"]
    with gate.slot():  # every slot and queue place was given back
        pass


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
