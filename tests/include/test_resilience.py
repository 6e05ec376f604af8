"""The resilience kit on a fake clock: backoff figures, Retry-After, predicates, token bucket, breaker, polling."""

from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, UTC

import pytest

from include.headroom.exceptions import (
    CircuitOpenError,
    HeadroomError,
    InvalidArgumentError,
    RetryExhaustedError,
    TransientError,
    WaitTimeoutError,
)
from include.headroom.resilience import CircuitBreaker, RetryPolicy, StateFile, TokenBucket, retry, retry_after_s, wait_until

EPOCH = 1_793_491_200.0  # 2026-11-01T00:00Z


class FakeClock:
    """Time that only moves when someone sleeps."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception, result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    call.calls = calls
    return call


def test_policy_delays_grow_exponentially_and_cap():
    policy = RetryPolicy(attempts=8, base_delay_s=0.25, max_delay_s=5)
    assert [policy.delay(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [RetryPolicy(attempts=4, base_delay_s=1, multiplier=3).delay(n) for n in range(3)] == [1, 3, 9]


def test_full_jitter_draws_within_the_ceiling_and_is_reproducible():
    policy = RetryPolicy(attempts=5, base_delay_s=1, max_delay_s=10, jitter=True)
    draws = [policy.delay(2, random.Random(3)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2] == pytest.approx(random.Random(3).uniform(0, 4))
    spread = [policy.delay(4, random.Random(i)) for i in range(300)]
    assert 0 <= min(spread) < 1 and 9 < max(spread) <= 10


def test_retry_sleeps_the_policy_delays_then_returns():
    clock = FakeClock()
    call = failing(3, TransientError("HTTP 503"))
    assert retry(call, RetryPolicy(attempts=4, base_delay_s=0.5), what="x", sleep=clock.sleep, clock=clock) == "ok"
    assert clock.sleeps == [0.5, 1.0, 2.0] and len(call.calls) == 4


def test_retry_after_in_seconds_wins_and_is_capped():
    clock = FakeClock()
    call = failing(2, TransientError("HTTP 429", retry_after="7"))
    retry(call, RetryPolicy(attempts=3, base_delay_s=0.5, max_delay_s=60), what="x", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [7.0, 7.0]
    clock = FakeClock()
    retry(failing(1, TransientError("HTTP 429", retry_after="120")), RetryPolicy(attempts=2, base_delay_s=0.5, max_delay_s=30),
          what="x", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [30.0]


def test_retry_after_as_http_date_is_read_against_the_clock():
    clock = FakeClock()
    when = format_datetime(datetime.fromtimestamp(EPOCH + 42, tz=UTC), usegmt=True)  # "Sun, 01 Nov 2026 00:00:42 GMT"
    assert when == "Sun, 01 Nov 2026 00:00:42 GMT"
    retry(failing(1, TransientError("HTTP 503", retry_after=when)), RetryPolicy(attempts=2, base_delay_s=0.5), what="x",
          sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [42.0]
    assert retry_after_s(when, now=EPOCH + 50) == 0.0  # a date in the past: go at once
    assert retry_after_s("soon") is None and retry_after_s(None) is None and retry_after_s(" 3 ") == 3.0 and retry_after_s(2) == 2.0


def test_errors_the_predicate_refuses_propagate_unchanged_at_once():
    clock = FakeClock()
    call = failing(5, KeyError("boom"))
    with pytest.raises(KeyError, match="boom"):
        retry(call, RetryPolicy(attempts=5, base_delay_s=1), what="x", sleep=clock.sleep)
    assert clock.sleeps == [] and len(call.calls) == 1
    call = failing(1, OSError("refused"))
    assert retry(call, RetryPolicy(attempts=2, base_delay_s=1), what="x", retryable=lambda e: isinstance(e, OSError),
                 sleep=clock.sleep) == "ok"
    assert clock.sleeps == [1]


def test_exhausted_raises_a_named_redacted_error_or_the_callers_own():
    clock = FakeClock()
    leak = TransientError("HTTP 500: echo Authorization: Basic dXNlcjpodW50ZXIy")
    expected = r"^GET /x failed after 3 attempt\(s\): TransientError: HTTP 500: echo Authorization: \*\*\*$"
    with pytest.raises(RetryExhaustedError, match=expected) as info:
        retry(failing(9, leak), RetryPolicy(attempts=3, base_delay_s=0.1), what="GET /x", sleep=clock.sleep)
    assert info.value.attempts == 3 and info.value.__cause__ is leak and "dXNlcjpodW50ZXIy" not in str(info.value)
    assert clock.sleeps == pytest.approx([0.1, 0.2])

    class Mine(HeadroomError):
        pass

    with pytest.raises(Mine, match="gave up after 2"):
        retry(failing(9, TransientError("t")), RetryPolicy(attempts=2), what="x", sleep=clock.sleep,
              exhausted=lambda n, exc: Mine(f"gave up after {n}"))


def test_on_retry_sees_each_retry_number_error_and_delay():
    seen = []
    clock = FakeClock()
    retry(failing(2, TransientError("t")), RetryPolicy(attempts=3, base_delay_s=2), what="x", sleep=clock.sleep,
          on_retry=lambda n, exc, d: seen.append((n, str(exc), d)))
    assert seen == [(0, "t", 2.0), (1, "t", 4.0)]


def test_policy_validates_itself():
    with pytest.raises(InvalidArgumentError, match="attempts=0 must be >= 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="delays must be >= 0"):  # an InvalidArgumentError is a ValueError too
        RetryPolicy(attempts=1, base_delay_s=-1)


def test_token_bucket_burst_then_rate_and_batches():
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate=4.0, capacity=2, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.acquire()
    assert clock.sleeps == [0.25, 0.25] and bucket.waited_s == 0.5
    bucket.acquire(10)  # a batch larger than the bucket waits for what it lacks: 10 tokens at 4/s
    assert clock.sleeps[-1] == 2.5 and clock.now == 3.0
    clock.now += 10  # idle: refills to capacity, never beyond
    bucket.acquire(2)
    assert len(clock.sleeps) == 3
    with pytest.raises(InvalidArgumentError, match="rate > 0 and capacity >= 1"):
        TokenBucket(rate=1, capacity=0.5)


def test_breaker_opens_waits_probes_and_closes(tmp_path):
    clock = FakeClock()
    state = StateFile(tmp_path / "svc.json")
    breaker = CircuitBreaker("svc", state, threshold=2, cooldown_s=60, clock=clock)
    assert breaker.record_failure() is False and breaker.record_failure() is True
    assert breaker.status().state == "open" and breaker.status().opened_at == EPOCH
    clock.now += 30
    with pytest.raises(CircuitOpenError, match=r"connector 'svc': circuit breaker is open after 2 consecutive failures; next probe in 30"):
        breaker.before_call()
    clock.now += 31
    breaker.before_call()  # the cool-down passed: one probe
    assert breaker.status().state == "half_open"
    assert breaker.record_failure() is True  # a failed probe re-opens at once
    assert (breaker.status().state, breaker.status().trips) == ("open", 2)
    clock.now += 61
    breaker.before_call()
    breaker.record_success()
    again = CircuitBreaker("svc", StateFile(tmp_path / "svc.json"), threshold=2, cooldown_s=60, clock=clock)  # another process
    assert (again.status().state, again.status().failures, again.status().trips) == ("closed", 0, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.json", "svc.lock"]  # no temporary file left behind
    named = CircuitBreaker("k8s/api", state, threshold=1, cooldown_s=60, clock=clock, label="target")
    named.record_failure()
    with pytest.raises(CircuitOpenError, match="^target 'k8s/api': circuit breaker is open"):
        named.before_call()


def test_wait_until_returns_the_first_truthy_value():
    clock = FakeClock(0.0)
    values = iter([None, 0, [], {"state": "success"}])
    assert wait_until(lambda: next(values), timeout=10, interval=2, clock=clock, sleep=clock.sleep) == {"state": "success"}
    assert clock.sleeps == [2, 2, 2]


def test_wait_until_times_out_naming_what_and_checks_at_the_deadline():
    clock = FakeClock(0.0)
    checks = []
    with pytest.raises(WaitTimeoutError, match=r"^dag run 'r1' finished did not hold within 5 s$") as info:
        wait_until(lambda: checks.append(clock.now), timeout=5, interval=2, what="dag run 'r1' finished", clock=clock, sleep=clock.sleep)
    assert isinstance(info.value, TimeoutError)
    assert checks == [0, 2, 4, 5] and clock.sleeps == [2, 2, 1]
    with pytest.raises(InvalidArgumentError, match="interval=0"):
        wait_until(lambda: True, timeout=1, interval=0)
