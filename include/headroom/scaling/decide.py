"""Scaling decisions: the HPA algorithm on current metrics, the error-rate alarm, predictive and scheduled floors. Pure and deterministic."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Sequence

from include.headroom.config import HOURS_PER_MONTH, HeadroomConfig, Service
from include.headroom.scaling.policy import (
    Recommendation,
    ScaleEvent,
    ScalingPolicySettings,
    policy_settings,
    rate_limit,
    replica_count,
    scheduled_bounds,
    stabilize,
)
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd


class Action(str, Enum):
    SCALE = "scale"
    ALARM = "alarm"
    NONE = "none"
    SKIP = "skip"


class Impact(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class ScalingDecision:
    """What to do with one service, why, and what it costs. Plain data, so it travels through XCom."""

    decision_id: str
    service: str
    tier: str
    as_of: str
    action: str
    rule: str
    reason: str
    current_replicas: int
    desired_replicas: int
    cost_change_month: float
    impact: str
    requires_approval: bool
    target_kind: str
    target: dict[str, str]
    enabled: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    min_replicas: int = 1
    max_replicas: int = 1
    max_step: int = 0
    recommendation: int = 0  # the unstabilized HPA recommendation, kept for the next stabilization window
    floor: int | None = None  # predictive/scheduled floor in force (applied as minReplicas where the target has an HPA)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScalingDecision:
        """Rebuild a decision from :meth:`to_dict` output (e.g. an XCom), ignoring unknown keys."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in names})


def _latest(metrics: pd.DataFrame, metric: str, points: int = 3) -> float | None:
    values = metrics.loc[metrics["metric"] == metric].sort_values("ts")["value"].tail(points)
    return float(values.mean()) if len(values) else None


def hpa_desired(current: int, current_metric: float, target: float, tolerance: float) -> int:
    """The Kubernetes HPA rule for one metric: ``ceil(current * metric / target)``, unchanged inside the tolerance band."""
    return replica_count(current, [(current_metric, target)], tolerance)


def predictive_floor(config: HeadroomConfig, service: Service, as_of: Any, capacity: pd.DataFrame | None,
                     forecast: pd.DataFrame | None, settings: ScalingPolicySettings) -> tuple[int | None, str]:
    """Replicas the forecast load ``lead_time`` after ``as_of`` needs at the tier's CPU target, from a trusted forecast only.

    :returns: (floor or None, why) -- None when no trusted forecast covers the time.
    """
    import pandas as pd

    if capacity is None or forecast is None or capacity.empty or forecast.empty:
        return None, "no forecast"
    metric = settings.floor_metric
    trusted = capacity[(capacity["service"] == service.name) & (capacity["metric"] == metric)]
    if not len(trusted) or not bool(trusted["trusted"].astype(bool).all()):
        return None, f"forecast of {metric} not trusted"
    rows = forecast[(forecast["service"] == service.name) & (forecast["metric"] == metric)].sort_values("ds")
    at = utc(as_of) + pd.Timedelta(seconds=config.scaling.lead_time_s)
    ahead = rows[pd.to_datetime(rows["ds"], utc=True) >= at].head(1)
    if not len(ahead):
        return None, f"forecast ends before {at.isoformat()}"
    per_replica = service.capacity_per_replica_rps * config.hpa_profile(service).cpu_target / 100.0
    load = float(ahead["yhat"].iloc[0])
    floor = int(min(max(math.ceil(load / per_replica), service.min_replicas), service.max_replicas))
    return floor, f"forecast load {load:.0f} req/s at {utc(ahead['ds'].iloc[0]).isoformat()} needs {floor} replicas"


def planned_capacity(config: HeadroomConfig, service: Service, start: Any, capacity: pd.DataFrame | None,
                     forecast: pd.DataFrame | None, settings: ScalingPolicySettings | None = None) -> list[dict[str, Any]]:
    """The planned capacity of ``service`` per hour for ``planned_capacity_hours`` from ``start``: the larger of the
    predictive floor (trusted forecasts only) and the scheduled rules' floors, within [min, max]."""
    import pandas as pd

    settings = settings or policy_settings()
    first = utc(start).floor("h")
    out = []
    for hour in range(settings.planned_capacity_hours):
        at = first + pd.Timedelta(hours=hour)
        pred, _ = predictive_floor(config, service, at, capacity, forecast, settings)
        sched, _, names = scheduled_bounds(settings.scheduled, service.name, at.to_pydatetime())
        floors = [f for f in (pred, sched) if f is not None]
        replicas = int(min(max(max(floors, default=service.min_replicas), service.min_replicas), service.max_replicas))
        out.append({"service": service.name, "at": at.isoformat(), "replicas": replicas, "predictive": pred,
                    "scheduled": sched, "rules": names})
    return out


def _cooldown(now: float, direction: int, events: Sequence[ScaleEvent], settings: ScalingPolicySettings) -> float | None:
    """Seconds left of the cooldown for a move in ``direction`` (+1 out, -1 in), or None."""
    window = settings.scale_out_cooldown_s if direction > 0 else settings.scale_in_cooldown_s
    last = max((e.at for e in events if e.change), default=None)
    if last is None or now - last >= window:
        return None
    return window - (now - last)


def plan_scaling(
    config: HeadroomConfig,
    service: Service,
    recent: pd.DataFrame,
    as_of: Any,
    findings: pd.DataFrame | None = None,
    capacity: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
    *,
    history: Sequence[Recommendation] = (),
    events: Sequence[ScaleEvent] = (),
    settings: ScalingPolicySettings | None = None,
) -> ScalingDecision:
    """Decide the replicas of ``service`` at ``as_of`` from its recent validated metrics, findings and forecast.

    Rules, in order: no recent metrics -> skip (stale); error rate above the alarm level -> alarm, never
    scale; otherwise the HPA algorithm on CPU and memory (the larger wins) and an observed cpu_bound
    finding's scale-out step, stabilized over the recommendation ``history``; the predictive floor (a
    trusted forecast ``lead_time`` ahead) and the scheduled rules' floors raise it, never lower it, so a
    forecast alone never scales in; then the HPA rate policies, [min, max], the step limit and the cooldowns.

    :param history: earlier unstabilized recommendations of this service (for the stabilization windows).
    :param events: earlier applied changes of this service (for the rate policies and cooldowns).
    """
    import numpy as np
    import pandas as pd

    settings = settings or policy_settings()
    now = utc(as_of)
    epoch = now.timestamp()
    sc = config.scaling
    profile_name = config.tier(service.tier).hpa_profile
    profile = config.hpa_profile(service)
    behavior = settings.behavior(profile_name)
    max_step = settings.max_step(profile_name)
    newest = pd.to_datetime(recent["ts"], utc=True).max() if len(recent) else None
    replicas_seen = _latest(recent, "replicas", 1)
    current = int(round(replicas_seen)) if replicas_seen else service.min_replicas
    cpu = _latest(recent, "cpu_utilization")
    memory = _latest(recent, "memory_utilization")
    error_rate = _latest(recent, "error_rate")
    inputs: dict[str, Any] = {"cpu_utilization": cpu, "memory_utilization": memory, "error_rate": error_rate,
                              "current_replicas": current, "newest_metric": newest.isoformat() if newest is not None else None}
    rule, reason, desired, action = "steady", "metrics inside the tolerance band", current, Action.NONE
    recommendation, floor = current, None

    if newest is None or (now - newest).total_seconds() > settings.max_data_age_s:
        rule, action = "stale_data", Action.SKIP
        reason = (f"no metric of {service.name!r} in the recent window" if newest is None
                  else f"newest metric of {service.name!r} at {newest.isoformat()} is older than {settings.max_data_age_s} s")
    elif not (service.min_replicas - max_step <= current <= service.max_replicas + max_step):
        rule, action = "out_of_bounds", Action.ALARM
        reason = (f"target runs {current} replicas, outside [{service.min_replicas}, {service.max_replicas}] by more than the "
                  f"step limit of {max_step}: no automatic action, a human must bring it back")
    elif error_rate is not None and error_rate > sc.alarm_error_rate:
        rule, action = "error_rate_alarm", Action.ALARM
        reason = f"error rate {error_rate:.1%} > {sc.alarm_error_rate:.0%}: more replicas do not fix a failing dependency"
    else:
        candidates = []
        if cpu is not None:
            candidates.append(("hpa_cpu", replica_count(current, [(cpu, profile.cpu_target)], sc.tolerance)))
        if memory is not None:
            candidates.append(("hpa_memory", replica_count(current, [(memory, profile.memory_target)], sc.tolerance)))
        if candidates:
            rule, recommendation = max(candidates, key=lambda c: c[1])
            reason = ", ".join(f"{m} {v:.1f}% vs target {t:.0f}%" for m, v, t in
                               (("cpu", cpu, profile.cpu_target), ("memory", memory, profile.memory_target)) if v is not None)
        if findings is not None and not findings.empty:
            recent_cpu = findings[(findings["service"] == service.name) & (findings["type"] == "cpu_bound") & (findings["kind"] == "observed")
                                  & (findings["end"] >= now - np.timedelta64(sc.cooldown_s, "s"))]
            if len(recent_cpu) and recommendation < current + sc.scale_out_step:
                rule, recommendation = "cpu_bound_finding", current + sc.scale_out_step
                reason = f"cpu_bound bottleneck observed until {recent_cpu['end'].max()}: scale out by {sc.scale_out_step}"
        desired = stabilize(epoch, current, recommendation, history, behavior)
        if desired == current and recommendation != current:
            rule, reason = "stabilization", f"{rule} recommends {recommendation} but the stabilization window holds {current}"
        pred, pred_why = predictive_floor(config, service, now, capacity, forecast, settings)
        sched, cap, sched_names = scheduled_bounds(settings.scheduled, service.name, now.to_pydatetime())
        inputs.update(predictive_floor=pred, predictive_reason=pred_why, scheduled_floor=sched, scheduled_cap=cap, scheduled_rules=sched_names)
        if cap is not None and desired > cap:
            rule, desired, reason = "scheduled_cap", cap, f"scheduled rules {sched_names} cap replicas at {cap}"
        floors = [(f, r, why) for f, r, why in ((pred, "predictive_floor", pred_why),
                                                (sched, "scheduled_floor", f"scheduled rules {sched_names} hold at least {sched}")) if f is not None]
        if floors:
            floor, floor_rule, floor_why = max(floors, key=lambda f: f[0])
            if floor > desired:
                # a floor only ever raises the reactive answer, so a forecast or a schedule alone never scales in
                if floor > current:
                    rule, reason = floor_rule, floor_why
                else:
                    reason += f"; scale-in stops at the {floor_rule} of {floor}"
                desired = floor
        limited = rate_limit(epoch, current, desired, service.min_replicas, service.max_replicas, events, behavior)
        limited = max(min(limited, current + max_step), current - max_step)
        if limited != desired:
            reason += f"; limited to {limited} by the rate policies, [min, max] and the step limit of {max_step}"
        desired = int(min(max(limited, service.min_replicas), service.max_replicas))
        if desired != current:
            wait = _cooldown(epoch, 1 if desired > current else -1, events, settings)
            if wait is not None:
                rule, reason, desired = "cooldown", f"{rule} wants {desired} but the cooldown has {wait:.0f} s left", current
        if desired != current:
            action = Action.SCALE
        elif rule not in ("cooldown", "stabilization"):
            rule = "steady"

    delta = desired - current
    cost = round(delta * service.cost_per_replica_hour * HOURS_PER_MONTH, 2)
    impact = Impact.HIGH if abs(delta) >= max(2, current // 2) else Impact.MEDIUM if delta else Impact.LOW
    if action is Action.ALARM:
        impact = Impact.HIGH
    requires_approval = action is Action.SCALE and (
        (impact is Impact.HIGH and settings.high_impact_requires_approval) or cost > sc.approval_cost_usd_month
    )
    key = json.dumps([service.name, now.isoformat(), rule, current, desired])
    return ScalingDecision(
        decision_id=hashlib.sha256(key.encode()).hexdigest()[:16], service=service.name, tier=service.tier.value,
        as_of=now.isoformat(), action=action.value, rule=rule, reason=reason, current_replicas=current,
        desired_replicas=desired, cost_change_month=cost, impact=impact.value, requires_approval=requires_approval,
        target_kind=service.target.kind.value, target=dict(service.target.params), enabled=service.target.enabled, inputs=inputs,
        min_replicas=service.min_replicas, max_replicas=service.max_replicas, max_step=max_step,
        recommendation=int(recommendation), floor=floor,
    )
