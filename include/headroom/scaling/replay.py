"""Policy replay: stored load history through the reactive policy alone and through headroom's combined policy
(reactive + trusted predictive floor + scheduled rules), with the replicas simulated by the sample fleet's load model.

The replay reads only the observed load (``throughput``); each policy's replicas, CPU and latency are
simulated step by step with the sample fleet's model (CPU = 5 % + 95 % of utilisation; latency from the
queueing term at the tier's nominal database share). A step is an SLO violation when the simulated
latency exceeds the tier's latency SLO or utilisation exceeds the overload level (requests are shed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

from include.headroom.exceptions import DataError, InvalidArgumentError
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

    from include.headroom.config import HeadroomConfig, Service

POLICIES = ("reactive", "combined")
SEASON_S = 7 * 24 * 3600  # the predictive floor's forecast: same time last week, scaled by the recent level


@dataclass(frozen=True)
class ReplayResult:
    """One service under one policy over the replay window."""

    service: str
    policy: str
    slo_violation_minutes: float
    replica_hours: float
    cost_usd: float
    scale_actions: int
    floor_trusted_share: float  # share of steps where the predictive floor's forecast passed the trust gate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulated_utilization(load: float, replicas: int, svc: Service) -> float:
    return load / (replicas * svc.capacity_per_replica_rps)


def simulated_latency_ms(utilization: float, svc: Service) -> float:
    """The sample fleet's latency at nominal cache and database: 0.7 x queueing + 0.3 x database share."""
    u = min(utilization, 0.97)
    queueing = (1.0 + 0.5 * u / (1.0 - u)) / 1.5
    return svc.base_latency_ms * (0.7 * queueing + 0.3)


def _seasonal_forecast(load: dict[float, float], at: float, now: float, step_s: int) -> float | None:
    """Load at ``at`` forecast at ``now``: last week's value at ``at`` times the ratio of the last hour to the same hour last week."""
    past = load.get(at - SEASON_S)
    if past is None:
        return None
    recent = [load.get(now - k * step_s) for k in range(12)]
    before = [load.get(now - SEASON_S - k * step_s) for k in range(12)]
    pairs = [(a, b) for a, b in zip(recent, before) if a is not None and b is not None and b > 0]
    if not pairs:
        return None
    level = sum(a for a, _ in pairs) / sum(b for _, b in pairs)
    return past * level


def _forecast_error(load: dict[float, float], now: float, lead_s: int, step_s: int) -> float | None:
    """MAPE of the seasonal forecast over the previous 24 h (forecasts made ``lead_s`` before each point)."""
    errors = []
    for k in range(0, 24 * 3600 // step_s, 3):
        at = now - k * step_s
        actual = load.get(at)
        guess = _seasonal_forecast(load, at, at - lead_s, step_s)
        if actual and guess is not None:
            errors.append(abs(guess - actual) / actual)
    return sum(errors) / len(errors) if errors else None


def replay_service(config: HeadroomConfig, svc: Service, load: dict[float, float], steps: Sequence[float], policy: str,
                   settings: ScalingPolicySettings, start_replicas: int | None = None) -> ReplayResult:
    """Simulate ``svc`` over ``steps`` (epoch seconds) with ``load`` (epoch seconds -> req/s) under ``policy``."""
    from datetime import datetime, timezone

    if policy not in POLICIES:
        raise InvalidArgumentError(f"policy={policy!r} must be one of {POLICIES}")
    profile_name = config.tier(svc.tier).hpa_profile
    profile, behavior = config.hpa_profile(svc), settings.behavior(profile_name)
    max_step, step_s = settings.max_step(profile_name), settings.replay_step_s
    threshold = config.tier(svc.tier).latency_slo.threshold_ms
    lead_s = config.scaling.lead_time_s
    trust_below = 1.0 - settings.confidence_threshold  # the forecast's recent MAPE must stay below this to be trusted
    replicas = max(start_replicas or svc.min_replicas, svc.min_replicas)
    pending: list[tuple[float, int]] = []
    history: list[Recommendation] = []
    events: list[ScaleEvent] = []
    window = max(behavior.scale_up.stabilization_s, behavior.scale_down.stabilization_s, settings.scale_in_cooldown_s)
    violation_steps = actions = trusted_steps = 0
    replica_seconds = 0.0
    trust_cache: dict[int, bool] = {}
    for now in steps:
        while pending and pending[0][0] <= now:
            _, target = pending.pop(0)
            if target != replicas:
                events.append(ScaleEvent(now, target - replicas))
                replicas, actions = target, actions + 1
        observed = load.get(now)
        if observed is None:
            continue
        util = simulated_utilization(observed, replicas, svc)
        replica_seconds += replicas * step_s
        if util > settings.overload_utilization or simulated_latency_ms(util, svc) > threshold:
            violation_steps += 1
        cpu = 100.0 * (0.05 + 0.95 * min(util, 0.97))
        memory = 38.0 + 12.0 * min(util, 0.97)
        recommendation = replica_count(replicas, [(cpu, profile.cpu_target), (memory, profile.memory_target)], config.scaling.tolerance)
        desired = stabilize(now, replicas, recommendation, history, behavior)
        history = [r for r in history if r.at > now - window] + [Recommendation(now, recommendation)]
        events = [e for e in events if e.at > now - window]
        if policy == "combined":
            floors = []
            day = int(now // 86400)
            if day not in trust_cache:
                err = _forecast_error(load, now, lead_s, step_s)
                trust_cache[day] = err is not None and err < trust_below
            if trust_cache[day]:
                guess = _seasonal_forecast(load, now + lead_s, now, step_s)
                if guess is not None:
                    trusted_steps += 1
                    floors.append(math.ceil(guess / (svc.capacity_per_replica_rps * profile.cpu_target / 100.0)))
            sched, _, _ = scheduled_bounds(settings.scheduled, svc.name, datetime.fromtimestamp(now, tz=timezone.utc))
            if sched is not None:
                floors.append(sched)
            if floors and max(floors) > desired:
                desired = max(floors)
        limited = rate_limit(now, replicas, desired, svc.min_replicas, svc.max_replicas, events, behavior)
        limited = max(min(limited, replicas + max_step), replicas - max_step)
        if limited != replicas:
            last = max((e.at for e in events), default=None)
            cooldown = settings.scale_out_cooldown_s if limited > replicas else settings.scale_in_cooldown_s
            if last is None or now - last >= cooldown:
                pending.append((now + settings.replay_actuation_delay_steps * step_s, limited))
    hours = replica_seconds / 3600.0
    return ReplayResult(
        service=svc.name, policy=policy, slo_violation_minutes=violation_steps * step_s / 60.0, replica_hours=round(hours, 2),
        cost_usd=round(hours * svc.cost_per_replica_hour, 2), scale_actions=actions,
        floor_trusted_share=round(trusted_steps / max(len(steps), 1), 3) if policy == "combined" else 0.0,
    )


def replay(config: HeadroomConfig, history: pd.DataFrame, start: Any, end: Any, services: Sequence[str] | None = None,
           settings: ScalingPolicySettings | None = None) -> list[dict[str, Any]]:
    """Replay ``[start, end)`` of ``history`` (canonical rows; ``throughput`` is used, with 7 days before ``start``
    for the predictive floor's forecast) through both policies.

    :returns: one row per service and policy, plus ``service='TOTAL'`` rows per policy.
    :raises DataError: when a service has no load in the window.
    """
    import pandas as pd

    settings = settings or policy_settings()
    first, last = utc(start), utc(end)
    if last <= first:
        raise DataError(f"replay window [{first.isoformat()}, {last.isoformat()}) is empty")
    names = list(services) if services else [s.name for s in config.services]
    load = history[history["metric"] == "throughput"]
    steps = [t.timestamp() for t in pd.date_range(first, last, freq=f"{settings.replay_step_s}s", inclusive="left")]
    rows: list[dict[str, Any]] = []
    for name in names:
        svc = config.service(name)
        series = load[load["service"] == name]
        inside = series[(pd.to_datetime(series["ts"], utc=True) >= first) & (pd.to_datetime(series["ts"], utc=True) < last)]
        if inside.empty:
            raise DataError(f"replay: service {name!r} has no throughput between {first.isoformat()} and {last.isoformat()}")
        by_ts = {utc(t).timestamp(): float(v) for t, v in zip(series["ts"], series["value"])}
        start_replicas = history[(history["service"] == name) & (history["metric"] == "replicas")]
        start_at = start_replicas[pd.to_datetime(start_replicas["ts"], utc=True) <= first]["value"].tail(1)
        initial = int(start_at.iloc[0]) if len(start_at) else None
        for policy in POLICIES:
            rows.append(replay_service(config, svc, by_ts, steps, policy, settings, initial).to_dict())
    for policy in POLICIES:
        mine = [r for r in rows if r["policy"] == policy]
        rows.append({"service": "TOTAL", "policy": policy,
                     "slo_violation_minutes": sum(r["slo_violation_minutes"] for r in mine),
                     "replica_hours": round(sum(r["replica_hours"] for r in mine), 2),
                     "cost_usd": round(sum(r["cost_usd"] for r in mine), 2),
                     "scale_actions": sum(r["scale_actions"] for r in mine),
                     "floor_trusted_share": round(sum(r["floor_trusted_share"] for r in mine) / max(len(mine), 1), 3)})
    return rows
