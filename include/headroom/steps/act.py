"""Act steps: the scaling decisions, the AWS capacity schedules and the cache warming plans, per service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.steps.common import select_services as _services
from include.headroom.store.queries import by_service, latest_capacity, recent_accuracy, recent_findings, rows_of
from include.headroom.validation.gates import Step, gate_services

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


@dataclass(frozen=True)
class ScalingPlan:
    """One scaling decision per catalog service (:meth:`ScalingDecision.to_dict` shape); a gated service's is a
    ``skip`` that keeps its current replicas and names the reason."""

    decisions: tuple[Mapping[str, Any], ...]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.decisions]


@dataclass(frozen=True)
class CapacitySchedule:
    """The planned capacity of one service on an AWS target (hourly floors), and whether it may be written now."""

    service: str
    plan: list[dict[str, Any]]
    live: bool

    def to_xcom(self) -> dict[str, Any]:
        """The keyword arguments of one mapped ``ScheduleCapacityOperator``."""
        return {"service": self.service, "plan": self.plan, "live": self.live}


@dataclass(frozen=True)
class CapacitySchedules:
    schedules: tuple[CapacitySchedule, ...]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [s.to_xcom() for s in self.schedules]


@dataclass(frozen=True)
class WarmingPlans:
    """Per service considered, a warming plan with its ``triggers``, or ``trigger`` None and the ``skip_reason``."""

    plans: tuple[Mapping[str, Any], ...]

    @property
    def triggered(self) -> list[Mapping[str, Any]]:
        return [p for p in self.plans if p["trigger"]]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.plans]


def plan_all_scaling(store: Store, config: HeadroomConfig, as_of: pd.Timestamp) -> ScalingPlan:
    """One scaling decision per catalog service at ``as_of``; a service with stale or invalid data gets a 'skip' decision."""
    import pandas as pd

    from include.headroom.scaling.decide import plan_scaling
    from include.headroom.scaling.routing import scaling_memory

    gate = gate_services(store, config, as_of, Step.SCALING)
    recent = store.read_metrics(start=as_of - pd.Timedelta(minutes=30), end=as_of + pd.Timedelta(seconds=1))
    findings = recent_findings(store, as_of, hours=1)
    capacity, forecast = latest_capacity(store, as_of)
    settings = config.scaling
    accuracy = recent_accuracy(store, as_of, settings.floor_metric)
    window = max(max(b.scale_up.stabilization_s, b.scale_down.stabilization_s) for b in settings.behaviors.values())
    memory = scaling_memory(store, as_of, max(window, settings.scale_in_cooldown_s))
    out = []
    recent_of, findings_of, capacity_of, forecast_of = by_service(recent), by_service(findings), by_service(capacity), by_service(forecast)
    for svc in config.services:
        history, events = memory.get(svc.name, ([], []))
        decision = plan_scaling(
            config,
            svc,
            rows_of(recent_of, svc.name, recent),
            as_of,
            rows_of(findings_of, svc.name, findings),
            rows_of(capacity_of, svc.name, capacity),
            rows_of(forecast_of, svc.name, forecast),
            history=history,
            events=events,
            settings=settings,
            first_seen=svc.name not in memory,
            accuracy=accuracy,
        ).to_dict()
        if gate[svc.name]:
            decision.update(action="skip", rule="freshness_gate", reason=gate[svc.name], desired_replicas=decision["current_replicas"])
        out.append(decision)
    return ScalingPlan(tuple(out))


def plan_capacity_schedules(store: Store, config: HeadroomConfig, as_of: pd.Timestamp, now: pd.Timestamp) -> CapacitySchedules:
    """Per service whose target takes AWS scheduled actions, the planned capacity (``planned_capacity``: predictive
    and scheduled floors per hour) and whether it may be written (``live``: current interval and enabled in the
    catalog), as keyword arguments of ``ScheduleCapacityOperator``."""
    from include.headroom.scaling.decide import planned_capacity
    from include.headroom.scaling.safety import interval_is_current

    settings = config.scaling
    capacity, forecast = latest_capacity(store, as_of)
    accuracy = recent_accuracy(store, as_of, settings.floor_metric)
    current = interval_is_current(as_of, now, settings)
    capacity_of, forecast_of = by_service(capacity), by_service(forecast)
    out = []
    for svc in config.services:
        if svc.target.kind.value not in ("aws_autoscaling_group", "aws_application_autoscaling"):
            continue
        plan = planned_capacity(
            config, svc, as_of, rows_of(capacity_of, svc.name, capacity), rows_of(forecast_of, svc.name, forecast), settings, accuracy
        )
        out.append(CapacitySchedule(service=svc.name, plan=plan, live=bool(current and svc.target.enabled)))
    return CapacitySchedules(tuple(out))


def plan_all_warming(
    store: Store,
    config: HeadroomConfig,
    as_of: pd.Timestamp,
    lookback_hours: float = 24.0 * 14,
    trigger: str | None = None,
    services: Sequence[str] | None = None,
) -> WarmingPlans:
    """A warming plan per service that has a trigger; the others are listed with no trigger and the reason.

    Triggers: a cache_bound finding in the lookback (``cache_loss`` too when the hit ratio caused it), a
    forecast load peak within the configured lead time, or ``trigger`` given by the run (``schedule``,
    ``manual``) for every service. Keys come from the access log, ranked by recency-weighted frequency
    x the forecast peak load, within the configured byte budget and key count.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.cache.access_log import load_access_log
    from include.headroom.cache.settings import load_cache_settings
    from include.headroom.cache.warming import Trigger, finding_triggers, forecast_peak, plan_warming, rank_hot_keys

    settings = load_cache_settings()
    warm = settings.warming
    now = as_of
    findings = recent_findings(store, now, hours=lookback_hours)
    gate = gate_services(store, config, now, Step.WARMING, services)
    hits = store.read_metrics(metrics=["cache_hit_ratio"], start=now - pd.Timedelta(hours=24), end=now)
    load = store.read_metrics(metrics=["throughput"], start=now - pd.Timedelta(hours=1), end=now + pd.Timedelta(seconds=1))
    _, forecasts = latest_capacity(store, now)
    fleet = None
    if settings.access_log.source == "sample_fleet":
        from include.headroom.metrics.sample_fleet import SampleFleet

        fleet = SampleFleet(config)
    out = []
    for svc in _services(config, services):
        series = hits.loc[hits["service"] == svc.name, "value"].to_numpy(float)
        hit_rate = float(np.mean(series)) if len(series) else 0.0
        volatility = float(np.std(series) / hit_rate) if len(series) and hit_rate else 1.0
        triggers = [t.value for t in finding_triggers(findings, svc.name)]
        peak = forecast_peak(forecasts, load, svc.name, now, warm.lead_time_s, warm.peak_ratio)
        if peak is not None:
            triggers.append(Trigger.FORECAST_PEAK.value)
        if trigger:
            triggers.append(Trigger(trigger).value)
        if gate[svc.name]:
            out.append({"service": svc.name, "trigger": None, "skip_reason": gate[svc.name]})
            continue
        if not triggers:
            out.append(
                {"service": svc.name, "trigger": None, "skip_reason": "no cache_bound finding, no cache loss and no forecast peak ahead"}
            )
            continue
        observed = load.loc[load["service"] == svc.name, "value"]
        peak_rps = peak if peak is not None else (float(observed.mean()) if len(observed) else None)
        log_rows = load_access_log(settings.access_log, svc.name, now - pd.Timedelta(seconds=warm.lookback_s), now, fleet)
        keys = rank_hot_keys(log_rows, now, warm.half_life_s, peak_rps)
        plan = plan_warming(
            config,
            svc,
            triggers[0],
            hit_rate,
            volatility,
            memory_budget_bytes=warm.budget_bytes,
            keys=keys,
            settings=settings,
            peak_rps=peak_rps,
        )
        out.append(
            {
                **plan.to_dict(),
                "triggers": triggers,
                "hit_rate": round(hit_rate, 4),
                "volatility": round(volatility, 4),
                "as_of": now.isoformat(),
                "skip_reason": None,
            }
        )
    return WarmingPlans(tuple(out))
