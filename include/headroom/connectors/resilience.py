"""Staying within a partner API's limits: the daily call budget of a connector.

Backoff, ``Retry-After``, the circuit breaker and its state file are the shared kit in
:mod:`include.headroom.resilience`; the connector errors are drawn in :mod:`include.headroom.exceptions`.
"""

from __future__ import annotations

from datetime import datetime, UTC

from include.headroom.exceptions import QuotaExhaustedError
from include.headroom.resilience import StateFile


class DailyBudget:
    """Counts calls per UTC day in the connector's state file; ``limit`` 0 means no budget."""

    def __init__(self, name: str, state: StateFile, limit: int) -> None:
        self.name, self.state, self.limit = name, state, limit

    def spend(self, calls: int = 1) -> None:
        """:raises QuotaExhaustedError: when the day's budget is spent (nothing is counted then)."""
        if not self.limit:
            return
        today = datetime.now(UTC).date().isoformat()
        with self.state.update() as doc:
            day = doc.get("daily", {})
            used = int(day.get("calls", 0)) if day.get("date") == today else 0
            if used + calls > self.limit:
                raise QuotaExhaustedError(f"connector {self.name!r}: daily budget of {self.limit} calls is spent ({used} used on {today})")
            doc["daily"] = {"date": today, "calls": used + calls}
