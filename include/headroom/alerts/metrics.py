"""headroom's outputs as Prometheus gauges: time to saturation, replica floor, error budget, burn rate, findings, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from include.headroom.timeutil import utc

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from include.headroom.store import ParquetStore


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...]


# Every metric headroom exports; the Grafana dashboard and the Prometheus rules under deploy/ use these names.
GAUGES: dict[str, Gauge] = {g.name: g for g in (
    Gauge("headroom_time_to_saturation_seconds", 
          "Seconds from the forecast's as-of until the series reaches its capacity (median forecast)",
          ("service", "metric")),
    Gauge("headroom_forecast_replica_floor", "Replicas the forecast needs at its peak, at the tier's CPU target", ("service",)),
    Gauge("headroom_error_budget_remaining_ratio",
          "Share of the 30-day error budget left (1 = untouched, <= 0 = spent)", ("service", "tier")),
    Gauge("headroom_burn_rate",
          "Error budget burn rate over the SLO window (1 = on pace to spend the budget exactly)", ("service", "tier")),
    Gauge("headroom_open_findings", "Bottleneck findings of the newest analysis, observed and predicted", ("service", "kind")),
    Gauge("headroom_open_alerts", "Open alert incidents", ("service", "severity")),
    Gauge("headroom_last_evaluation_timestamp_seconds", "Unix time of the as-of these figures were computed for", ()),
)}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _newest(df, column: str, as_of: datetime):
    if df.empty:
        return df
    df = df[df[column] <= utc(as_of)]
    return df[df[column] == df[column].max()] if len(df) else df


def collect_samples(store: ParquetStore, as_of: datetime) -> list[Sample]:
    """The value of every gauge at ``as_of`` from the store (series without a value are left out, never zero-filled)."""
    import pandas as pd

    at = utc(as_of)
    out = [Sample("headroom_last_evaluation_timestamp_seconds", (), at.timestamp())]
    capacity = store.read("capacity")
    if not capacity.empty:
        capacity = capacity[capacity["run_date"] <= at.strftime("%Y-%m-%d")]
        capacity = capacity[capacity["run_date"] == capacity["run_date"].max()]
        for r in capacity.itertuples():
            if not pd.isna(r.saturation_at):
                out.append(Sample("headroom_time_to_saturation_seconds", (("service", r.service), ("metric", r.metric)),
                                  (r.saturation_at - at).total_seconds()))
        floors = capacity.dropna(subset=["replicas_needed_peak"]).groupby("service")["replicas_needed_peak"].max()
        out += [Sample("headroom_forecast_replica_floor", (("service", s),), float(v)) for s, v in floors.items() if v > 0]
    for r in _newest(store.read("slo_status"), "window_end", as_of).itertuples():
        labels = (("service", r.service), ("tier", r.tier))
        if r.error_budget_remaining == r.error_budget_remaining:
            out.append(Sample("headroom_error_budget_remaining_ratio", labels, float(r.error_budget_remaining)))
        if r.burn_rate == r.burn_rate:
            out.append(Sample("headroom_burn_rate", labels, float(r.burn_rate)))
    findings = _newest(store.read("findings"), "window_end", as_of)
    if not findings.empty:
        for (service, kind), n in findings.groupby(["service", "kind"]).size().items():
            out.append(Sample("headroom_open_findings", (("service", service), ("kind", kind)), float(n)))
    alerts = store.read("alerts", status="open")
    if not alerts.empty:
        for (service, severity), n in alerts.groupby(["service", "severity"]).size().items():
            out.append(Sample("headroom_open_alerts", (("service", service), ("severity", severity)), float(n)))
    return out


def registry_of(samples: list[Sample]) -> CollectorRegistry:
    """A fresh registry holding ``samples`` as :data:`GAUGES` (pushed as a whole, so stale series disappear)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client import Gauge as PromGauge

    registry = CollectorRegistry()
    gauges = {name: PromGauge(name, g.help, list(g.labels), registry=registry) for name, g in GAUGES.items()}
    for s in samples:
        gauge = gauges[s.name]
        (gauge.labels(**dict(s.labels)) if s.labels else gauge).set(s.value)
    return registry
