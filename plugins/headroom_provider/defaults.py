"""Shared DAG defaults and the run-time helpers every headroom task uses."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC
from typing import TYPE_CHECKING, Any

from headroom_provider.notifications.alerts import HeadroomAlertNotifier

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import Store

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "headroom",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    # A task that failed after its retries fails its run: one run_failed incident per run, through alerts.yaml.
    "on_failure_callback": [HeadroomAlertNotifier(kind="run_failed")],
}
# Tags come from this set only, so the UI's tag filter stays useful.
TAGS = {"headroom", "ingest", "validate", "forecast", "analyse", "act", "report", "connectors"}


def run_window(context: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The run's data interval as UTC Timestamps; runs without one (asset-triggered, manual) get a zero-length window
    at their run time.

    Times enter the library here, normalised once: every step takes ``pd.Timestamp`` (UTC) and trusts it.
    """
    from include.headroom.timeutil import utc

    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        end = context.get("logical_date") or context["dag_run"].run_after
        start = end
    return utc(start), utc(end)


def store() -> Store:
    from headroom_provider.hooks.store import HeadroomStoreHook

    return HeadroomStoreHook().get_store()


def config() -> HeadroomConfig:
    from include.headroom.config import get_config

    return get_config()


def service_batches(size: int, names: list[str] | None = None) -> list[list[str]]:
    """The catalog's services (or ``names``) in batches of ``size`` by name, for dynamic task mapping.

    By name because the store's metric files are sorted by service: a batch of neighbouring names
    reads a few row groups of each file, a batch of scattered names reads them all (at 1,000
    services a 50-service batch reads its 8 weeks of history in about a quarter of the time).
    """
    names = sorted(s.name for s in config().services) if names is None else sorted(names)
    return [names[i : i + size] for i in range(0, len(names), size)]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, so it can be an XCom on any metadata database.

    PostgreSQL's JSON type rejects NaN, which SQLite stores; a task's return value must pass both.
    """
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def as_of(context: Any) -> pd.Timestamp:
    """The time a decision is made for (UTC): the analysis window that triggered this run, else the run's own time."""
    from include.headroom.timeutil import utc

    events = context.get("triggering_asset_events") or {}
    ends = [e.extra["window_end"] for asset_events in events.values() for e in asset_events if (e.extra or {}).get("window_end")]
    if ends:
        return max(utc(end) for end in ends)  # XCom/asset extras are ISO text: compared as times, not as strings
    return run_window(context)[1]


def now() -> pd.Timestamp:
    """The wall clock, UTC, as the library takes it."""
    import pandas as pd

    return pd.Timestamp.now(tz="UTC")
