"""Scaling decisions: the HPA algorithm on current metrics, the error-rate alarm, predictive and scheduled floors; pure, deterministic."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.catalog import HOURS_PER_MONTH, Service
from include.headroom.config import HeadroomConfig
from include.headroom.scaling.kernel import Action, ScalingState, Signals, kernel_settings, next_replicas
from include.headroom.scaling.policy import Recommendation, ScaleEvent, floor_replicas, replica_count, scheduled_bounds
from include.headroom.scaling.settings import ScalingConfig, policy_settings
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd


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
    recommendation: int | None = 0  # the unstabilized HPA recommendation, kept for the next stabilization window (None: none made)
    floor: int | None = None  # predictive/scheduled floor in force (applied as minReplicas where the target has an HPA)
    seed: int | None = None  # replicas recorded as a recommendation because the target was first seen (the controller's memory)
    planned_replicas: int | None = None  # an out-of-bounds alarm's planned move to the bound

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


def measured_trust(accuracy: pd.DataFrame | None, service: str, metric: str, settings: ScalingConfig) -> tuple[bool | None, str]:
    """Whether the forecast of ``metric`` is trusted by its recent measured accuracy: the newest first-day score of the
    ``forecast_accuracy`` table (earlier runs' forecasts against the actuals since; ``store.queries.recent_accuracy``)
    under the replay's rule (:meth:`ScalingConfig.forecast_trusted`: MAPE, or coverage of the forecast interval).

    The table's coverage is the share of actuals inside ``[yhat_lower, yhat_upper]``, never above the share at or below
    ``yhat_upper`` the replay measures, so the live rule is the stricter of the two.

    :returns: (trusted, why); ``None`` when no score exists yet.
    """
    if accuracy is None or accuracy.empty:
        return None, "no measured accuracy"
    rows = accuracy[(accuracy["service"] == service) & (accuracy["metric"] == metric)]
    if "horizon_days" in rows:
        rows = rows[rows["horizon_days"] == 1]
    if rows.empty:
        return None, "no measured accuracy"
    newest = rows.sort_values("run_date").iloc[-1]
    mape, coverage = float(newest["mape"]), float(newest["coverage"])
    trusted = settings.forecast_trusted(mape, coverage)
    measured = f"run {newest['run_date']}: MAPE {mape:.1%}, interval coverage {coverage:.0%}" if coverage == coverage else \
        f"run {newest['run_date']}: MAPE {mape:.1%}, no interval"
    return trusted, f"forecast of {metric} {'trusted' if trusted else 'not trusted'} ({measured})"


def predictive_floor(
    config: HeadroomConfig,
    service: Service,
    as_of: pd.Timestamp,
    capacity: pd.DataFrame | None,
    forecast: pd.DataFrame | None,
    settings: ScalingConfig,
    accuracy: pd.DataFrame | None = None,
) -> tuple[int | None, str]:
    """Replicas the forecast load ``settings.lead_time_s`` after ``as_of`` needs, from a trusted forecast only.

    Trust comes from the forecast's recent measured accuracy (:func:`measured_trust` on ``accuracy``, rows of the
    ``forecast_accuracy`` table), the rule the replay applies; until a forecast of the service has been scored,
    the capacity run's backtest (``capacity.trusted``) decides. The lead time is the actuation delay plus one decision
    period (:attr:`ScalingConfig.lead_time_s`), as in the replay.

    Reads the forecast's upper quantile (``yhat_upper``, ``predictive_floor.quantile: upper``) when it has one, else
    the forecast's own replica plan (``replicas``), else its median; replicas come from ``HeadroomConfig.replicas_for``.

    :returns: (floor or None, why) -- None when no trusted forecast covers the time.
    """
    import pandas as pd

    if capacity is None or forecast is None or capacity.empty or forecast.empty:
        return None, "no forecast"
    metric = settings.floor_metric
    trusted, why = measured_trust(accuracy, service.name, metric, settings)
    if trusted is None:
        backtest = capacity[(capacity["service"] == service.name) & (capacity["metric"] == metric)]
        trusted = bool(len(backtest)) and bool(backtest["trusted"].astype(bool).all())
        why = f"forecast of {metric} {'trusted' if trusted else 'not trusted'} by its backtest (no measured accuracy yet)"
    if not trusted:
        return None, why
    rows = forecast[(forecast["service"] == service.name) & (forecast["metric"] == metric)].sort_values("ds")
    at = as_of + pd.Timedelta(seconds=settings.lead_time_s)
    ahead = rows[pd.to_datetime(rows["ds"], utc=True) >= at].head(1)
    if not len(ahead):
        return None, f"forecast ends before {at.isoformat()}"
    when = utc(ahead["ds"].iloc[0]).isoformat()
    if settings.floor_quantile == "upper" and "yhat_upper" in ahead and ahead["yhat_upper"].iloc[0] == ahead["yhat_upper"].iloc[0]:
        load = float(ahead["yhat_upper"].iloc[0])
        floor = floor_replicas(load, service.capacity_per_replica_rps, settings.floor_utilization,
                               lambda v: config.replicas_for(service, v))
        floor = min(max(floor, service.min_replicas), service.max_replicas)
        return floor, f"forecast upper load {load:.0f} req/s at {when} needs {floor} replicas; {why}"
    if "replicas" in ahead and ahead["replicas"].iloc[0] == ahead["replicas"].iloc[0]:
        floor = int(ahead["replicas"].iloc[0])
        return floor, f"the forecast's plan at {when} is {floor} replicas; {why}"
    load = float(ahead["yhat"].iloc[0])
    floor = floor_replicas(load, service.capacity_per_replica_rps, settings.floor_utilization, lambda v: config.replicas_for(service, v))
    floor = min(max(floor, service.min_replicas), service.max_replicas)
    return floor, f"forecast load {load:.0f} req/s at {when} needs {floor} replicas; {why}"


def planned_capacity(
    config: HeadroomConfig,
    service: Service,
    start: pd.Timestamp,
    capacity: pd.DataFrame | None,
    forecast: pd.DataFrame | None,
    settings: ScalingConfig | None = None,
    accuracy: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """The planned capacity of ``service`` per hour for ``planned_capacity_hours`` from ``start``: the larger of the
    predictive floor (trusted forecasts only) and the scheduled rules' floors, within [min, max]."""
    import pandas as pd

    settings = settings or policy_settings()
    first = start.floor("h")
    out = []
    for hour in range(settings.planned_capacity_hours):
        at = first + pd.Timedelta(hours=hour)
        pred, _ = predictive_floor(config, service, at, capacity, forecast, settings, accuracy)
        sched, _, names = scheduled_bounds(settings.scheduled, service.name, at.to_pydatetime())
        floors = [f for f in (pred, sched) if f is not None]
        replicas = int(min(max(max(floors, default=service.min_replicas), service.min_replicas), service.max_replicas))
        out.append(
            {"service": service.name, "at": at.isoformat(), "replicas": replicas, "predictive": pred, "scheduled": sched, "rules": names}
        )
    return out


def plan_scaling(
    config: HeadroomConfig,
    service: Service,
    recent: pd.DataFrame,
    as_of: pd.Timestamp,
    findings: pd.DataFrame | None = None,
    capacity: pd.DataFrame | None = None,
    forecast: pd.DataFrame | None = None,
    *,
    history: Sequence[Recommendation] = (),
    events: Sequence[ScaleEvent] = (),
    settings: ScalingConfig | None = None,
    first_seen: bool = False,
    accuracy: pd.DataFrame | None = None,
) -> ScalingDecision:
    """Decide the replicas of ``service`` at ``as_of`` from its recent validated metrics, findings and forecast.

    No recent metrics -> skip (stale). Otherwise the signals (CPU, memory, error rate, load, an observed
    cpu_bound finding, the predictive floor of a trusted forecast ``lead_time`` ahead, the scheduled rules) go
    to :func:`include.headroom.scaling.kernel.next_replicas`, the kernel the replay runs too (rules there).

    :param history: earlier unstabilized recommendations of this service (for the stabilization windows).
    :param events: earlier applied changes of this service (for the rate policies and cooldowns).
    :param first_seen: no memory of this service yet (``scaling_memory`` found no recommendation): its current
        replicas are recorded as a recommendation first, so it does not scale in during the first window.
    :param accuracy: recent ``forecast_accuracy`` rows (what the predictive floor's trust is measured on).
    """
    import numpy as np
    import pandas as pd

    settings = settings or policy_settings()
    now = as_of
    sc = config.scaling
    ks = kernel_settings(config, service, settings)
    newest = pd.to_datetime(recent["ts"], utc=True).max() if len(recent) else None
    replicas_seen = _latest(recent, "replicas", 1)
    current = int(round(replicas_seen)) if replicas_seen is not None else service.min_replicas
    cpu = _latest(recent, "cpu_utilization")
    memory = _latest(recent, "memory_utilization")
    error_rate = _latest(recent, "error_rate")
    load = _latest(recent, "throughput")
    inputs: dict[str, Any] = {
        "cpu_utilization": cpu,
        "memory_utilization": memory,
        "error_rate": error_rate,
        "throughput": load,
        "current_replicas": current,
        "newest_metric": newest.isoformat() if newest is not None else None,
    }
    rule, reason, desired, action = "steady", "metrics inside the tolerance band", current, Action.NONE
    recommendation: int | None = current
    floor = seed = planned = None

    if newest is None or (now - newest).total_seconds() > settings.max_data_age_s:
        rule, action = "stale_data", Action.SKIP
        reason = (
            f"no metric of {service.name!r} in the recent window"
            if newest is None
            else f"newest metric of {service.name!r} at {newest.isoformat()} is older than {settings.max_data_age_s} s"
        )
    else:
        finding = None
        if findings is not None and not findings.empty:
            recent_cpu = findings[
                (findings["service"] == service.name)
                & (findings["type"] == "cpu_bound")
                & (findings["kind"] == "observed")
                & (findings["end"] >= now - np.timedelta64(sc.cooldown_s, "s"))
            ]
            if len(recent_cpu):
                finding = f"cpu_bound bottleneck observed until {recent_cpu['end'].max()}"
        pred, pred_why = predictive_floor(config, service, now, capacity, forecast, settings, accuracy)
        sched, cap, sched_names = scheduled_bounds(settings.scheduled, service.name, now.to_pydatetime())
        inputs.update(
            predictive_floor=pred, predictive_reason=pred_why, scheduled_floor=sched, scheduled_cap=cap, scheduled_rules=sched_names
        )
        signals = Signals(
            cpu=cpu,
            memory=memory,
            error_rate=error_rate,
            cpu_bound_finding=finding,
            load_replicas=int(config.replicas_for(service, load)) if load is not None else None,
            predictive_floor=pred,
            predictive_reason=pred_why,
            scheduled_floor=sched,
            scheduled_cap=cap,
            scheduled_rules=tuple(sched_names),
        )
        kd = next_replicas(ScalingState(now.timestamp(), current, tuple(history), tuple(events), first_seen), signals, ks)
        action, rule, reason, desired = kd.action, kd.rule, kd.reason, kd.desired
        recommendation, floor, seed, planned = kd.recommendation, kd.floor, kd.seed, kd.planned
        if planned is not None:
            inputs["planned_move"] = planned

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
        decision_id=hashlib.sha256(key.encode()).hexdigest()[:16],
        service=service.name,
        tier=service.tier.value,
        as_of=now.isoformat(),
        action=action.value,
        rule=rule,
        reason=reason,
        current_replicas=current,
        desired_replicas=desired,
        cost_change_month=cost,
        impact=impact.value,
        requires_approval=requires_approval,
        target_kind=service.target.kind.value,
        target=dict(service.target.params),
        enabled=service.target.enabled,
        inputs=inputs,
        min_replicas=service.min_replicas,
        max_replicas=service.max_replicas,
        max_step=ks.max_step,
        recommendation=recommendation,
        floor=floor,
        seed=seed,
        planned_replicas=planned,
    )
