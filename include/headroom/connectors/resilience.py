"""Staying within a partner API's limits: errors, backoff with jitter, a persistent circuit breaker and daily budget.

::

    SourceError
     +-- ConnectorError          a connector call failed (names connector, method and path)
          +-- AuthenticationError    the remote rejected the credentials (never quotes them)
          +-- CircuitOpenError       the breaker is open: no call is made until the cool-down passes
          +-- QuotaExhaustedError    the connector's daily call budget is spent
          +-- PartialFailureError    some records of a write were refused after every retry round
    SchemaError
     +-- RemoteSchemaError       a remote record lacks a mapped field (names connector, object, record, field)
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from include.headroom.exceptions import SchemaError, SourceError


class ConnectorError(SourceError):
    """A connector call failed; the message names the connector, the request and the remote's own error text."""


class AuthenticationError(ConnectorError):
    """The remote rejected the connection's credentials."""


class CircuitOpenError(ConnectorError):
    """The connector's circuit breaker is open."""


class QuotaExhaustedError(ConnectorError):
    """The connector's daily call budget is spent."""


class PartialFailureError(ConnectorError):
    """Records of a write were refused after every retry round; ``failures`` maps record id -> remote error."""

    def __init__(self, message: str, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.failures = failures


class RemoteSchemaError(SchemaError):
    """A remote record does not match the mapping in ``connectors.yaml``."""


def backoff_delay(attempt: int, base_s: float, max_s: float, jitter: bool, rng: random.Random | None = None) -> float:
    """Delay before retry ``attempt`` (0-based): ``min(max_s, base_s * 2**attempt)``, with full jitter when asked."""
    ceiling = min(max_s, base_s * (2 ** attempt))
    return (rng or random).uniform(0, ceiling) if jitter else ceiling


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class StateFile:
    """A small JSON document per connector under the data folder, read-modify-written under an exclusive lock.

    It outlives the process, so breaker state and the daily budget hold across task retries and DAG runs.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.read()
                yield state
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, sort_keys=True))
                os.replace(tmp, self.path)
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
    """

    def __init__(self, name: str, state: StateFile, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.time) -> None:
        self.name, self.state, self.threshold, self.cooldown_s, self._clock = name, state, threshold, cooldown_s, clock
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
                        f"connector {self.name!r}: circuit breaker is open after {b['failures']} consecutive failures; "
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


class DailyBudget:
    """Counts calls per UTC day in the connector's state file; ``limit`` 0 means no budget."""

    def __init__(self, name: str, state: StateFile, limit: int) -> None:
        self.name, self.state, self.limit = name, state, limit

    def spend(self, calls: int = 1) -> None:
        """:raises QuotaExhaustedError: when the day's budget is spent (nothing is counted then)."""
        if not self.limit:
            return
        today = datetime.now(timezone.utc).date().isoformat()
        with self.state.update() as doc:
            day = doc.get("daily", {})
            used = int(day.get("calls", 0)) if day.get("date") == today else 0
            if used + calls > self.limit:
                raise QuotaExhaustedError(f"connector {self.name!r}: daily budget of {self.limit} calls is spent ({used} used on {today})")
            doc["daily"] = {"date": today, "calls": used + calls}
