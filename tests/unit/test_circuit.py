"""The circuit breaker's states on a fake clock: closed, open after N failures, half-open, closed again."""

import pytest

from recsys.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_fails_fast_until_open_s():
    clock = Clock()
    breaker = CircuitBreaker("redis", failures=3, open_s=5.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success in between: the count starts again
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    with pytest.raises(CircuitOpenError, match="redis failed recently"):
        breaker.check()
    clock.now += 4.9
    assert breaker.state == OPEN
    clock.now += 0.2
    assert breaker.state == HALF_OPEN and breaker.allow()


def test_half_open_closes_on_success_and_reopens_on_one_failure():
    clock = Clock()
    breaker = CircuitBreaker("kafka", failures=2, open_s=1.0, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 1.5
    assert breaker.state == HALF_OPEN
    breaker.failure()  # one failure is enough while half-open
    assert breaker.state == OPEN
    clock.now += 1.5
    breaker.success()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == CLOSED  # closed again: back to counting
