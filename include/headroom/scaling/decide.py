"""Scaling decisions: the HPA rule on current metrics, the error-rate alarm, and a predictive floor. Pure and deterministic."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from include.headroom.config import HOURS_PER_MONTH, HeadroomConfig, Service
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd


class Action(str, Enum):
    SCALE = "scale"
    ALARM = "alarm"
    NONE = "none"


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _latest(metrics: pd.DataFrame, metric: str, points: int = 3) -> float | None:
    values = metrics.loc[metrics["metric"] == metric].sort_values("ts")["value"].tail(points)
    return float(values.mean()) if len(values) else None


def hpa_desired(current: int, current_metric: float, target: float, tolerance: float) -> int:
    """The Kubernetes HPA rule: ``ceil(current * metric / target)``, unchanged inside the tolerance band."""
    ratio = current_metric / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def _rate_limited(current: int, desired: int, up_percent: float, down_percent: float) -> int:
    if desired > current:
        return min(desired, max(current + 1, math.floor(current * (1 + up_percent / 100.0))))
    if desired < current:
        return max(desired, math.ceil(current * (1 - down_percent / 100.0)))
    return desired


def plan_scaling(
    config: HeadroomConfig,
    service: Service,
    recent: pd.DataFrame,
    as_of: Any,
    findings: pd.DataFrame | None = None,
    capacity: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
) -> ScalingDecision:
    """Decide the replicas of ``service`` at ``as_of`` from its recent validated metrics, findings and forecast.

    Rules, in order: error rate above the alarm level -> alarm, never scale;
    otherwise the HPA rule on CPU and memory (the larger wins), rate-limited and
    clipped to [min, max]; an observed cpu_bound finding adds the scale-out step;
    a trusted forecast raises the floor to what the load ``lead_time`` ahead needs,
    and never lowers replicas by itself.
    """
    import numpy as np

    now = utc(as_of)
    sc = config.scaling
    profile = config.hpa_profile(service)
    current = int(round(_latest(recent, "replicas", 1) or service.min_replicas))
    cpu = _latest(recent, "cpu_utilization")
    memory = _latest(recent, "memory_utilization")
    error_rate = _latest(recent, "error_rate")
    inputs: dict[str, Any] = {"cpu_utilization": cpu, "memory_utilization": memory, "error_rate": error_rate, "current_replicas": current}
    rule, reason, desired, action = "steady", "metrics inside the tolerance band", current, Action.NONE

    if error_rate is not None and error_rate > sc.alarm_error_rate:
        rule, action = "error_rate_alarm", Action.ALARM
        reason = f"error rate {error_rate:.1%} > {sc.alarm_error_rate:.0%}: more replicas do not fix a failing dependency"
    else:
        candidates = []
        if cpu is not None:
            candidates.append(("hpa_cpu", hpa_desired(current, cpu, profile.cpu_target, sc.tolerance)))
        if memory is not None:
            candidates.append(("hpa_memory", hpa_desired(current, memory, profile.memory_target, sc.tolerance)))
        if candidates:
            rule, desired = max(candidates, key=lambda c: c[1])
            reason = f"cpu {cpu:.1f}% vs target {profile.cpu_target:.0f}%, memory {memory:.1f}% vs target {profile.memory_target:.0f}%" if cpu is not None and memory is not None else rule
        if findings is not None and not findings.empty:
            recent_cpu = findings[(findings["service"] == service.name) & (findings["type"] == "cpu_bound") & (findings["kind"] == "observed")
                                  & (findings["end"] >= now - np.timedelta64(sc.cooldown_s, "s"))]
            if len(recent_cpu) and desired < current + sc.scale_out_step:
                rule, desired = "cpu_bound_finding", current + sc.scale_out_step
                reason = f"cpu_bound bottleneck observed until {recent_cpu['end'].max()}: scale out by {sc.scale_out_step}"
        if capacity is not None and forecast is not None and not forecast.empty:
            trusted = capacity[(capacity["service"] == service.name) & (capacity["metric"] == "throughput") & capacity["trusted"].astype(bool)]
            rows = forecast[(forecast["service"] == service.name) & (forecast["metric"] == "throughput")]
            if len(trusted) and len(rows):
                at = now + np.timedelta64(sc.lead_time_s, "s")
                ahead = rows[rows["ds"] >= at].head(1)
                if len(ahead):
                    per_replica = service.capacity_per_replica_rps * profile.cpu_target / 100.0
                    floor = math.ceil(float(ahead["yhat"].iloc[0]) / per_replica)
                    inputs["predictive_floor"] = floor
                    if floor > desired:
                        rule, desired = "predictive_floor", floor
                        reason = f"forecast load {float(ahead['yhat'].iloc[0]):.0f} req/s at {ahead['ds'].iloc[0]} needs {floor} replicas"
        desired = _rate_limited(current, desired, profile.scale_up.percent, profile.scale_down.percent)
        desired = int(min(max(desired, service.min_replicas), service.max_replicas))
        if desired != current:
            action = Action.SCALE
        else:
            rule = "steady"

    delta = desired - current
    cost = round(delta * service.cost_per_replica_hour * HOURS_PER_MONTH, 2)
    impact = Impact.HIGH if abs(delta) >= max(2, current // 2) else Impact.MEDIUM if delta else Impact.LOW
    if action is Action.ALARM:
        impact = Impact.HIGH
    requires_approval = action is Action.SCALE and (impact is Impact.HIGH or cost > sc.approval_cost_usd_month)
    key = json.dumps([service.name, now.isoformat(), rule, current, desired])
    return ScalingDecision(
        decision_id=hashlib.sha256(key.encode()).hexdigest()[:16], service=service.name, tier=service.tier.value,
        as_of=now.isoformat(), action=action.value, rule=rule, reason=reason, current_replicas=current,
        desired_replicas=desired, cost_change_month=cost, impact=impact.value, requires_approval=requires_approval,
        target_kind=service.target.kind.value, target=dict(service.target.params), enabled=service.target.enabled, inputs=inputs,
    )
