"""One alert evaluation: read the incidents, plan what is due, deliver it through an injected sender, store the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from collections.abc import Callable, Iterable, Sequence

from include.headroom.alerts.lifecycle import Condition, DeliveryResult, Incident, Notice, incidents_from_rows, plan, record_delivery
from include.headroom.alerts.settings import AlertSettings, Kind
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from include.headroom.store import ParquetStore

Deliver = Callable[[Notice], Sequence[DeliveryResult]]


@dataclass(frozen=True)
class AlertRunResult:
    """What an evaluation did: notices sent (and what each channel answered), held, or nothing because of a past interval."""

    past_interval: bool
    notices: list[Notice] = field(default_factory=list)
    deliveries: dict[str, list[DeliveryResult]] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    open_incidents: int = 0

    def summary(self) -> dict[str, object]:
        failed = sorted({r.channel for rs in self.deliveries.values() for r in rs if r.state == "failed"})
        return {"past_interval": self.past_interval, "sent": [f"{n.action.value} {n.incident_key}" for n in self.notices],
                "held": self.held, "failed_channels": failed, "open_incidents": self.open_incidents}


def is_past_interval(as_of: datetime, now: datetime, settings: AlertSettings) -> bool:
    """A run for an as-of older than ``past_interval_s`` (a backfill, a catch-up, a re-run of an old interval) never notifies."""
    return (utc(now) - utc(as_of)).total_seconds() > settings.past_interval_s


def _to_frame(incidents: Iterable[Incident]):
    import pandas as pd

    return pd.DataFrame([i.row() for i in incidents])


def run_alerts(store: ParquetStore, settings: AlertSettings, conditions: Sequence[Condition], as_of: datetime, now: datetime,
               deliver: Deliver, evaluated_kinds: Iterable[Kind] | None = None) -> AlertRunResult:
    """Open, update and resolve incidents for ``conditions`` at ``as_of``, tell what is due and store the outcome.

    Each incident is written right after its notice was delivered, so a task that dies half-way re-sends at
    most the notice it was delivering. A past interval (see :func:`is_past_interval`) writes and sends nothing.
    """
    if is_past_interval(as_of, now, settings):
        return AlertRunResult(past_interval=True)
    stored = incidents_from_rows(store.read("alerts").to_dict("records"))
    p = plan(conditions, stored, settings, utc(as_of).to_pydatetime(), utc(now).to_pydatetime(), evaluated_kinds)
    notified = {n.incident_key for n in p.notices}
    quiet = [inc for key, inc in p.incidents.items() if key not in notified]
    if quiet:
        store.upsert("alerts", _to_frame(quiet))
    deliveries = {}
    for notice in p.notices:
        results = list(deliver(notice))
        deliveries[notice.incident_key] = results
        done = record_delivery(p.incidents[notice.incident_key], notice, results, utc(now).to_pydatetime())
        store.upsert("alerts", _to_frame([done]))
    open_count = int((store.read("alerts", status="open")["status"] == "open").sum())
    held = {**p.held, **{k: "delivery failed" for k, rs in deliveries.items() if not any(r.state in ("sent", "skipped") for r in rs)}}
    return AlertRunResult(past_interval=False, notices=p.notices, deliveries=deliveries, held=held, open_incidents=open_count)
