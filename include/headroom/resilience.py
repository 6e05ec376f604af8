"""Calling things that fail now and then: retry with backoff, a token bucket, a circuit breaker, polling.

- :class:`RetryPolicy` + :func:`retry`: exponential backoff (optionally with full jitter), a ``Retry-After``
  answer (seconds or an HTTP date) wins over the computed delay, a predicate says what is worth retrying;
  sleep, clock and random source are injectable so tests run on a fake clock.
- :class:`TokenBucket`: an average rate with a burst; ``acquire(n)`` waits for ``n`` tokens.
- :class:`CircuitBreaker`: opens after consecutive failures, lets one probe through after a cool-down;
  its state lives in a :class:`StateFile` so it holds across processes and task retries.
- :func:`wait_until`: poll a predicate until it holds or a timeout passes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import random
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar

from include.headroom.exceptions import (
    CircuitOpenError,
    InvalidArgumentError,
    RetryExhaustedError,
    TransientError,
    WaitTimeoutError,
)
from include.headroom.fileio import write_atomic
from include.headroom.redact import redact

log = logging.getLogger(__name__)
T = TypeVar("T")


# -- retry -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried.

    The delay before retry ``n`` (0-based) is ``min(max_delay_s, base_delay_s * multiplier**n)``; with
    ``jitter`` it is drawn uniformly from ``[0, that]`` (full jitter). A ``Retry-After`` answer replaces the
    computed delay, capped at ``max_delay_s``.

    :param attempts: calls in all, the first included (>= 1).
    """

    attempts: int
    base_delay_s: float = 0.0
    max_delay_s: float = math.inf
    multiplier: float = 2.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidArgumentError(f"RetryPolicy attempts={self.attempts!r} must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise InvalidArgumentError(
                f"RetryPolicy delays must be >= 0, got base_delay_s={self.base_delay_s!r} max_delay_s={self.max_delay_s!r}")

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (0 = the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier**retry_number)
        return (rng or random).uniform(0, ceiling) if self.jitter else ceiling


def retry_after_s(value: str | float | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return max(0.0, float(value))
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def is_transient(exc: BaseException) -> bool:
    """The default retry predicate: errors marked :class:`TransientError`."""
    return isinstance(exc, TransientError)


def describe(exc: BaseException) -> str:
    """``Type: message`` of an error, redacted (it may quote a remote answer)."""
    text = str(exc)
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    retryable: Callable[[BaseException], bool] = is_transient,
    retry_after: Callable[[BaseException], str | float | None] = lambda exc: getattr(exc, "retry_after", None),
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    exhausted: Callable[[int, BaseException], BaseException] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> T:
    """Call ``call`` until it returns, retrying the errors ``retryable`` accepts as ``policy`` says.

    An error ``retryable`` refuses propagates at once, unchanged. When the attempts are spent, the error
    ``exhausted(attempts, last_error)`` builds is raised from the last error (default: a
    :class:`RetryExhaustedError` naming ``what``, the attempts and the redacted last error).

    :param retry_after: the ``Retry-After`` value an error carries (default: its ``retry_after`` attribute);
        it replaces the computed delay, capped at ``policy.max_delay_s``.
    :param on_retry: called as ``on_retry(retry_number, error, delay_s)`` before each sleep (figures, logs).
    :param clock: wall clock in epoch seconds, to read HTTP-date ``Retry-After`` values against.
    """
    for attempt in range(policy.attempts):
        try:
            return call()
        except Exception as exc:  # filtered by the caller's predicate; anything else re-raises unchanged
            if not retryable(exc):
                raise
            if attempt + 1 >= policy.attempts:
                if exhausted is not None:
                    raise exhausted(policy.attempts, exc) from exc
                message = f"{what} failed after {policy.attempts} attempt(s): {describe(exc)}"
                raise RetryExhaustedError(message, policy.attempts) from exc
            wait = retry_after_s(retry_after(exc), now=clock())
            delay = policy.delay(attempt, rng) if wait is None else min(wait, policy.max_delay_s)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            else:
                log.warning("%s: attempt %d of %d failed (%s); retrying in %.2f s", what, attempt + 1, policy.attempts,
                            describe(exc), delay)
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


# -- rate ------------------------------------------------------------------------------------------


class TokenBucket:
    """Allows ``capacity`` calls at once and refills ``rate`` calls per second; ``acquire`` waits for a token."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or capacity < 1:
            raise InvalidArgumentError(f"token bucket needs rate > 0 and capacity >= 1, got rate={rate!r} capacity={capacity!r}")
        self.rate, self.capacity, self._clock, self._sleep = rate, capacity, clock, sleep
        self._tokens, self._last = float(capacity), clock()
        self.waited_s = 0.0

    def acquire(self, tokens: float = 1) -> None:
        """Take ``tokens`` (one call, or a batch of keys), waiting until they have been refilled.

        A batch larger than the bucket waits for the part it lacks: the average rate holds either way.
        """
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate) - tokens
        self._last = now
        if self._tokens < 0:
            wait = -self._tokens / self.rate
            self.waited_s += wait
            self._sleep(wait)
            self._tokens, self._last = 0.0, now + wait  # an oversleep is refilled on the next call


# -- circuit breaker -------------------------------------------------------------------------------


class StateFile:
    """A small JSON document (per connector, per target) read-modify-written under an exclusive lock.

    It outlives the process, so breaker state and budgets hold across task retries and DAG runs.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def update(self) -> Generator[dict[str, Any], None, None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.read()
                yield state
                write_atomic(self.path, json.dumps(state, sort_keys=True))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}


@dataclass
class BreakerStatus:
    state: str
    failures: int
    trips: int
    opened_at: float | None


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed calls; after ``cooldown_s`` lets one probe through (half-open).

    A successful probe closes it, a failed one re-opens it. State lives in a :class:`StateFile`.

    :param name: what the breaker guards, as error messages name it (``connector 'hubspot'``); a bare name is
        shown as ``connector '<name>'``.
    """

    def __init__(self, name: str, state: StateFile, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.time,
                 label: str = "connector") -> None:
        self.name, self.state, self.threshold, self.cooldown_s, self._clock = name, state, threshold, cooldown_s, clock
        self.label = label
        self.trips_this_run = 0

    def status(self) -> BreakerStatus:
        b = self.state.read().get("breaker", {})
        return BreakerStatus(b.get("state", "closed"), int(b.get("failures", 0)), int(b.get("trips", 0)), b.get("opened_at"))

    def before_call(self) -> None:
        """:raises CircuitOpenError: while open and the cool-down has not passed."""
        if self.state.read().get("breaker", {}).get("state", "closed") == "closed":
            return
        with self.state.update() as doc:
            b = doc.setdefault("breaker", {"state": "closed", "failures": 0, "trips": 0, "opened_at": None})
            if b["state"] == "open":
                waited = self._clock() - float(b["opened_at"])
                if waited < self.cooldown_s:
                    raise CircuitOpenError(
                        f"{self.label} {self.name!r}: circuit breaker is open after {b['failures']} consecutive failures; "
                        f"next probe in {self.cooldown_s - waited:.0f} s"
                    )
                b["state"] = "half_open"

    def record_success(self) -> None:
        b = self.state.read().get("breaker", {})
        if b.get("state", "closed") == "closed" and not b.get("failures"):
            return
        with self.state.update() as doc:
            b = doc.setdefault("breaker", {"trips": 0})
            b.update(state="closed", failures=0, opened_at=None)

    def record_failure(self) -> bool:
        """Count a failed call; return True when this failure opened the breaker."""
        with self.state.update() as doc:
            b = doc.setdefault("breaker", {"state": "closed", "failures": 0, "trips": 0, "opened_at": None})
            b["failures"] = int(b.get("failures", 0)) + 1
            if b.get("state") == "half_open" or (b.get("state") != "open" and b["failures"] >= self.threshold):
                b.update(state="open", opened_at=self._clock(), trips=int(b.get("trips", 0)) + 1)
                self.trips_this_run += 1
                return True
            return False


# -- polling ---------------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 1.0,
    *,
    what: str = "condition",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    The predicate is always called at least once, and once more at the deadline.

    :raises WaitTimeoutError: when it is still falsy after ``timeout`` seconds (the message names ``what``).
    """
    if interval <= 0:
        raise InvalidArgumentError(f"wait_until interval={interval!r} must be > 0")
    deadline = clock() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeoutError(f"{what} did not hold within {timeout:g} s")
        sleep(min(interval, remaining))
