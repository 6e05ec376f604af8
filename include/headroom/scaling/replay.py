"""Policy replay: a demand trace (req/s on a regular grid) through the scaling kernel under each policy, with the
replicas simulated step by step.

The decisions are made by :func:`include.headroom.scaling.kernel.next_replicas`, the function the live
``plan_scaling`` calls; the forecasts behind the predictive floors come from the product's forecasting engine
(:func:`include.headroom.forecasting.single.forecast_series`, model ``auto``), refitted every
``replay.forecast.refit_every_s`` (daily, like the ``capacity_forecast`` DAG) on the trace *before* the refit
time only.

**The simulated service** (every figure in scaling.yaml ``replay:``):

- utilization ``u = load / (ready replicas x capacity per replica)``; the HPA sees CPU
  ``100 x (cpu_idle_share + (1 - cpu_idle_share) x min(u, overload))`` and memory ``memory_base + memory_per_util x u``,
  averaged over ``signal_window_s``, from the *ready* pods only (pods still starting report no metric, which
  the replica calculator handles); the measured load (the demand, as a load balancer counts requests, served or
  shed) is averaged over the same window;
- latency ``base x ((1 - db_share) x q + db_share)`` with the queueing term ``q = (1 + c x u / (1 - u)) / (1 + c)``
  (``c = queue_coefficient``, ``u`` capped at the overload level): it grows sharply near saturation;
- a step is an SLO violation when the latency exceeds the tier's latency SLO or ``u`` exceeds
  ``overload_utilization`` (requests are shed);
- new replicas are billed at once and serve after ``predictive.actuation_delay_s`` (the setting the live lead time
  is derived from too); removed replicas stop at once;
- decisions every ``step_s`` (the ``scaling_actions`` schedule); the predictive lead time is the actuation
  delay plus one decision period (a floor must be in place before the load it is for arrives).

**Policies.** ``reactive``: the HPA algorithm alone. ``scheduled``: reactive + the scheduled rules.
``predictive``: reactive + the floor from the forecast's upper quantile at the lead time, when trusted.
``combined``: predictive + scheduled, the HPA at ``predictive_floor.trusted_cpu_target`` while a trusted floor
holds, scale-in on the quicker agreed window only when the reactive recommendation and the forecast agree, and,
while the CPU is saturated (``target_tracking.saturated_cpu_utilization``), a scale-out to the replicas the measured load
needs when the CPU rule asks for fewer (the CPU stops near 100 %, the demand does not).
The forecast is trusted when, over the last ``forecast.trust_window_s``, its measured MAPE is at most
``1 - predictive.confidence_threshold`` or at least ``predictive.trust_coverage`` of the loads stayed at or below its upper
quantile; the floor holds the upper forecast at ``predictive_floor.utilization`` of each replica's capacity and
follows the recent level (actual over forecast in the last hour, bounded by ``forecast.level_bounds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping, Sequence

from include.headroom.exceptions import DataError, InvalidArgumentError
from include.headroom.scaling.kernel import (
    KernelSettings,
    ScalingState,
    Signals,
    kernel_settings,
    next_replicas,
)
from include.headroom.scaling.policy import Recommendation, ScaleEvent, floor_replicas, forecast_trusted, scheduled_bounds
from include.headroom.scaling.settings import ScalingConfig, policy_settings
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.settings import ForecastConfig
    from include.headroom.config import HeadroomConfig
    from include.headroom.catalog import Service

POLICIES = ("reactive", "predictive", "combined", "scheduled")
DEFAULT_POLICIES = ("reactive", "combined")
SEASON_S = 14 * 24 * 3600  # history the store and sample-fleet replays read before the window (forecast training)


@dataclass(frozen=True)
class SimulatedService:
    """The service model of the replay (see the module docstring)."""

    capacity_per_replica_rps: float
    base_latency_ms: float
    latency_slo_ms: float
    overload_utilization: float = 0.97
    cpu_idle_share: float = 0.05
    db_share: float = 0.3
    queue_coefficient: float = 0.5
    memory_base: float = 38.0
    memory_per_util: float = 12.0

    def __post_init__(self) -> None:
        if self.capacity_per_replica_rps <= 0 or self.base_latency_ms <= 0 or self.latency_slo_ms <= 0:
            raise InvalidArgumentError(f"capacity_per_replica_rps={self.capacity_per_replica_rps}, base_latency_ms={self.base_latency_ms} "
                             f"and latency_slo_ms={self.latency_slo_ms} must be > 0")
        if not 0 < self.overload_utilization < 1:
            raise InvalidArgumentError(f"overload_utilization={self.overload_utilization} must be in (0, 1)")

    def utilization(self, load: float, replicas: int) -> float:
        return math.inf if replicas <= 0 else load / (replicas * self.capacity_per_replica_rps)

    def cpu(self, utilization: float) -> float:
        return 100.0 * (self.cpu_idle_share + (1.0 - self.cpu_idle_share) * min(utilization, self.overload_utilization))

    def memory(self, utilization: float) -> float:
        return self.memory_base + self.memory_per_util * min(utilization, self.overload_utilization)

    def latency_ms(self, utilization: float) -> float:
        u = min(utilization, self.overload_utilization)
        queueing = (1.0 + self.queue_coefficient * u / (1.0 - u)) / (1.0 + self.queue_coefficient)
        return self.base_latency_ms * ((1.0 - self.db_share) * queueing + self.db_share)

    def violates(self, load: float, replicas: int) -> bool:
        u = self.utilization(load, replicas)
        return load > 0 and (u > self.overload_utilization or self.latency_ms(u) > self.latency_slo_ms)


@dataclass(frozen=True)
class ReplaySettings:
    """How the replay runs: decision period, actuation delay, the forecast schedule and trust."""

    step_s: int = 300
    actuation_delay_s: int = 300
    signal_window_s: int = 300
    refit_every_s: int = 86400
    training_days: int = 21
    trust_window_s: int = 7200
    trust_mape: float = 0.2
    level_bounds: tuple[float, float] = (0.8, 1.5)
    model: str = "auto"
    floor_quantile: str = "upper"
    trust_coverage: float | None = None  # also trusted when this share of the window's loads was at or below the upper forecast
    floor_utilization: float | None = None  # the floor's load per replica as a share of capacity (None: at the CPU target)

    @property
    def lead_time_s(self) -> int:
        """The predictive lead time: a floor decided now serves after the actuation delay, until the next decision."""
        return self.actuation_delay_s + self.step_s

    @classmethod
    def from_settings(cls, settings: ScalingConfig) -> ReplaySettings:
        raw: Mapping[str, Any] = settings.replay
        fc = raw.get("forecast", {}) or {}
        step = int(raw.get("step_s", settings.replay_step_s))
        return cls(
            step_s=step, actuation_delay_s=settings.actuation_delay_s,
            signal_window_s=int(raw.get("signal_window_s", step)), refit_every_s=int(fc.get("refit_every_s", 86400)),
            training_days=int(fc.get("training_days", 21)), trust_window_s=int(fc.get("trust_window_s", 7200)),
            trust_mape=1.0 - settings.confidence_threshold, level_bounds=tuple(fc.get("level_bounds", (0.8, 1.5))),
            model=str(fc.get("model", "auto")), floor_quantile=settings.floor_quantile,
            trust_coverage=settings.trust_coverage,
            floor_utilization=settings.floor_utilization,
        )


def simulated_service(config: HeadroomConfig, svc: Service, settings: ScalingConfig) -> SimulatedService:
    """The replay's model of a catalog service (its capacity, base latency and tier SLO, the replay figures)."""
    raw = settings.replay.get("service", {}) or {}
    return SimulatedService(svc.capacity_per_replica_rps, svc.base_latency_ms, config.tier(svc.tier).latency_slo.threshold_ms,
                            overload_utilization=settings.overload_utilization, **{k: float(v) for k, v in raw.items()})


@dataclass
class PolicyResult:
    """One trace under one policy."""

    policy: str
    slo_violation_minutes: float
    replica_hours: float
    cost_usd: float
    scale_actions: int
    floor_trusted_share: float = 0.0
    replicas: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "slo_violation_minutes": self.slo_violation_minutes, "replica_hours": self.replica_hours,
                "cost_usd": self.cost_usd, "scale_actions": self.scale_actions, "floor_trusted_share": self.floor_trusted_share}


@dataclass(frozen=True)
class ForecastTrack:
    """The replay's forecasts (NaN: none).

    ``yhat``/``upper``: per step ``t``, the median and upper forecast *for* ``t`` made by the last refit at or before
    ``t`` (what the trust measure compares with the actual load). ``ahead_yhat``/``ahead_upper``: per decision step
    ``i``, the forecast for ``i`` + the lead time made by the refit in force *at* ``i`` -- never by a later refit, so
    no decision reads a forecast fitted on data after it. ``None``: a known future (tests), read from ``yhat``/``upper``.
    """

    yhat: np.ndarray
    upper: np.ndarray
    refits: int
    models: tuple[str, ...]
    ahead_yhat: np.ndarray | None = None
    ahead_upper: np.ndarray | None = None

    def ahead(self, i: int, lead_steps: int, quantile: str) -> float:
        """The forecast a decision at step ``i`` reads for step ``i + lead_steps`` (``quantile``: upper or median)."""
        known = self.ahead_upper if quantile == "upper" else self.ahead_yhat
        if known is not None:
            return float(known[i])
        series = self.upper if quantile == "upper" else self.yhat
        return float(series[i + lead_steps]) if i + lead_steps < len(series) else math.nan


def forecast_track(ds: pd.DatetimeIndex, load: np.ndarray, config: ForecastConfig, rs: ReplaySettings,
                   start: int = 0) -> ForecastTrack:
    """Refit the forecasting engine every ``refit_every_s`` on the data before the refit time, and lay each forecast
    over the steps until the next refit (plus the lead time). Gaps are interpolated for the fit only."""
    import numpy as np
    import pandas as pd

    from include.headroom.exceptions import ForecastError
    from include.headroom.forecasting.single import forecast_series

    n = len(ds)
    yhat, upper = np.full(n, np.nan), np.full(n, np.nan)
    ahead_yhat, ahead_upper = np.full(n, np.nan), np.full(n, np.nan)
    step = ds[1] - ds[0]
    per_refit = max(1, int(round(pd.Timedelta(seconds=rs.refit_every_s) / step)))
    lead = int(math.ceil(pd.Timedelta(seconds=rs.lead_time_s) / step))
    train = int(round(pd.Timedelta(days=rs.training_days) / step))
    first = ds[start].floor(pd.Timedelta(seconds=rs.refit_every_s)) if rs.refit_every_s <= 86400 else ds[start]
    origin = int(ds.searchsorted(first))
    models, refits = [], 0
    series = pd.Series(load, index=ds).interpolate(limit_direction="both")
    for cut in range(origin, n, per_refit):
        if cut < 2:
            continue
        lo = max(0, cut - train)
        df = pd.DataFrame({"ds": ds[lo:cut], "y": series.to_numpy()[lo:cut]})
        horizon = per_refit + lead
        try:
            fc = forecast_series(df, f"{int(horizon * step.total_seconds())}s", config, model=rs.model)
        except ForecastError:
            continue
        refits += 1
        models.append(fc.model)
        end = min(n, cut + horizon)
        mid, high = fc.forecast["yhat"].to_numpy(), fc.forecast["yhat_upper"].to_numpy()
        yhat[cut:end] = mid[: end - cut]
        upper[cut:end] = high[: end - cut]
        # decisions in [cut, next refit) read this refit's forecast lead steps ahead
        stop = min(n, cut + per_refit)
        ahead_yhat[cut:stop] = mid[lead: lead + stop - cut]
        ahead_upper[cut:stop] = high[lead: lead + stop - cut]
    return ForecastTrack(yhat, upper, refits, tuple(models), ahead_yhat, ahead_upper)


def simulate(ds: pd.DatetimeIndex, load: np.ndarray, service: SimulatedService, ks: KernelSettings, policy: str,
             rs: ReplaySettings, *, cost_per_replica_hour: float, replicas_for: Any, forecast: ForecastTrack | None = None,
             scheduled: Any = None, start: int = 0, initial_replicas: int | None = None) -> PolicyResult:
    """Run ``load`` (req/s on the regular grid ``ds``; NaN = gap) from index ``start`` through the kernel under ``policy``.

    :param replicas_for: load (req/s) -> replicas at the CPU target (``HeadroomConfig.replicas_for`` bound to a service).
    :param scheduled: ``at (datetime) -> (floor, cap, names)`` for the scheduled rules, or None.
    """
    if policy not in POLICIES:
        raise InvalidArgumentError(f"policy={policy!r} must be one of {POLICIES}")
    import numpy as np

    step_s = (ds[1] - ds[0]).total_seconds()
    n = len(ds)
    epoch = ds.as_unit("ns").asi8 // 10**9
    use_forecast = policy in ("predictive", "combined") and forecast is not None
    use_schedule = policy in ("scheduled", "combined") and scheduled is not None
    if policy != "combined":
        ks = replace(ks, agreed_scale_down_stabilization_s=None, trusted_cpu_target=None, saturated_cpu=None)
    window = max(ks.behavior.scale_up.stabilization_s, ks.behavior.scale_down.stabilization_s, ks.scale_in_cooldown_s,
                 *(p.period_s for p in ks.behavior.scale_up.policies), *(p.period_s for p in ks.behavior.scale_down.policies))
    first_load = next((v for v in load[start:] if v == v), 0.0)
    spec = initial_replicas if initial_replicas is not None else replicas_for(first_load)
    spec = int(min(max(spec, ks.min_replicas), ks.max_replicas))
    ready = spec
    pending: list[tuple[float, int]] = []  # (ready at, spec replicas) of scale-outs still starting
    history: list[Recommendation] = []
    events: list[ScaleEvent] = []
    first_seen, last_decision = True, -math.inf
    signal_steps = max(1, int(round(rs.signal_window_s / step_s)))
    lead_steps = int(math.ceil(rs.lead_time_s / step_s))
    trust_steps = max(1, int(round(rs.trust_window_s / step_s)))
    level_steps = max(1, int(round(3600 / step_s)))
    cpu_hist: list[float] = []
    load_hist: list[float] = []
    violation_steps = 0
    replica_seconds = 0.0
    actions = trusted = decisions = 0
    trace: list[int] = []
    for i in range(start, n):
        now = float(epoch[i])
        while pending and pending[0][0] <= now:
            ready = max(ready, pending.pop(0)[1])
        ready = min(ready, spec)
        value = load[i]
        replica_seconds += spec * step_s
        trace.append(spec)
        if value != value:
            continue
        u = service.utilization(value, ready)
        if service.violates(value, ready):
            violation_steps += 1
        cpu_hist.append(service.cpu(u))
        load_hist.append(value)
        if now - last_decision < rs.step_s - 1e-9:
            continue
        last_decision = now
        decisions += 1
        cpu = float(np.mean(cpu_hist[-signal_steps:]))
        measured = float(np.mean(load_hist[-signal_steps:]))  # the load over the same window as the CPU
        floor, floor_why = None, ""
        if use_forecast:
            ahead = forecast.ahead(i, lead_steps, rs.floor_quantile)
            lo = max(start, i - trust_steps)
            past_f, past_a = forecast.yhat[lo:i + 1], load[lo:i + 1]
            ok = (past_f == past_f) & (past_a == past_a) & (past_a > 0)
            if ahead == ahead and ok.sum() >= trust_steps // 2:
                mape = float(np.mean(np.abs(past_f[ok] - past_a[ok]) / past_a[ok]))
                covered = float(np.mean(past_a[ok] <= forecast.upper[lo:i + 1][ok]))
                if forecast_trusted(mape, covered, rs.trust_mape, rs.trust_coverage):
                    recent = ok[-level_steps:]
                    level = float(np.sum(past_a[-level_steps:][recent]) / max(np.sum(past_f[-level_steps:][recent]), 1e-9))
                    level = min(max(level, rs.level_bounds[0]), rs.level_bounds[1])
                    need = max(ahead, 0.0) * level
                    floor = floor_replicas(need, service.capacity_per_replica_rps, rs.floor_utilization, replicas_for)
                    floor = int(min(max(floor, ks.min_replicas), ks.max_replicas))
                    floor_why = f"forecast upper {ahead * level:.0f} req/s in {rs.lead_time_s} s needs {floor} replicas (MAPE {mape:.0%})"
                    trusted += 1
        sched_floor = sched_cap = None
        names: tuple[str, ...] = ()
        if use_schedule:
            sched_floor, sched_cap, listed = scheduled(ds[i].to_pydatetime())
            names = tuple(listed)
        state = ScalingState(now, spec, tuple(history), tuple(events), first_seen)
        signals = Signals(cpu=cpu, memory=service.memory(u), pods_reporting=ready if ready < spec else None,
                          load_replicas=replicas_for(measured), predictive_floor=floor, predictive_reason=floor_why,
                          scheduled_floor=sched_floor, scheduled_cap=sched_cap, scheduled_rules=names)
        d = next_replicas(state, signals, ks)
        first_seen = False
        if d.seed is not None:
            history.append(Recommendation(now, d.seed))
        if d.recommendation is not None:
            history.append(Recommendation(now, d.recommendation))
        history = [r for r in history if r.at > now - window]
        events = [e for e in events if e.at > now - window]
        if d.action.value == "scale" and d.desired != spec:
            events.append(ScaleEvent(now, d.desired - spec))
            actions += 1
            if d.desired > spec:
                pending.append((now + rs.actuation_delay_s, d.desired))
            else:
                pending = [(at, min(r, d.desired)) for at, r in pending]
                ready = min(ready, d.desired)
            spec = d.desired
    hours = replica_seconds / 3600.0
    return PolicyResult(policy=policy, slo_violation_minutes=round(violation_steps * step_s / 60.0, 1), replica_hours=round(hours, 2),
                        cost_usd=round(hours * cost_per_replica_hour, 2), scale_actions=actions,
                        floor_trusted_share=round(trusted / decisions, 3) if use_forecast and decisions else 0.0, replicas=trace)


def actual_result(ds: pd.DatetimeIndex, load: np.ndarray, replicas: np.ndarray, service: SimulatedService,
                  cost_per_replica_hour: float, start: int = 0) -> PolicyResult:
    """The replicas that actually ran (NaN steps skipped), judged by the same service model."""
    step_s = (ds[1] - ds[0]).total_seconds()
    violation = seconds = 0.0
    changes, last = 0, None
    for value, r in zip(load[start:], replicas[start:], strict=True):
        if r != r:
            continue
        r = int(round(r))
        seconds += r * step_s
        changes += int(last is not None and r != last)
        last = r
        if value == value and service.violates(value, r):
            violation += step_s
    hours = seconds / 3600.0
    return PolicyResult("actual", round(violation / 60.0, 1), round(hours, 2), round(hours * cost_per_replica_hour, 2), changes)


def replay_trace(ds: pd.DatetimeIndex, load: np.ndarray, service: SimulatedService, ks: KernelSettings, policies: Sequence[str],
                 forecast_config: ForecastConfig, rs: ReplaySettings, *, cost_per_replica_hour: float, replicas_for: Any,
                 scheduled: Any = None, start: int = 0, initial_replicas: int | None = None) -> dict[str, PolicyResult]:
    """Every policy in ``policies`` over one trace; the forecasts are made once and shared."""
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise DataError(f"unknown policies {bad}; policies are {list(POLICIES)}")
    track = forecast_track(ds, load, forecast_config, rs, start) if {"predictive", "combined"} & set(policies) else None
    return {p: simulate(ds, load, service, ks, p, rs, cost_per_replica_hour=cost_per_replica_hour, replicas_for=replicas_for,
                        forecast=track, scheduled=scheduled, start=start, initial_replicas=initial_replicas) for p in policies}


def regular_grid(frame: pd.DataFrame, step_s: int | None = None) -> tuple[pd.DatetimeIndex, np.ndarray, int]:
    """``ds``, ``y`` (sorted, unique) on a regular grid: the trace's own step, or ``step_s`` when the trace is coarser
    (then interpolated in time). Missing steps are NaN. :returns: (grid, values, steps filled in)."""
    import numpy as np
    import pandas as pd

    s = pd.Series(frame["y"].to_numpy(float), index=pd.DatetimeIndex(frame["ds"]))
    step = pd.Timedelta(int(np.median(np.diff(s.index.as_unit("ns").asi8))), "ns")
    grid = pd.date_range(s.index[0], s.index[-1], freq=step)
    y = s.reindex(grid)
    missing = int(y.isna().sum())
    if step_s is not None and step > pd.Timedelta(seconds=step_s):
        fine = pd.date_range(grid[0], grid[-1], freq=pd.Timedelta(seconds=step_s))
        gap = y.reindex(fine, method="pad").isna().to_numpy() | y.reindex(fine, method="backfill").isna().to_numpy()
        y = y.dropna()
        y = y.reindex(y.index.union(fine)).interpolate(method="time", limit_area="inside").reindex(fine).mask(gap)
        grid = fine
    return grid, y.to_numpy(float), missing


def replay(config: HeadroomConfig, history: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, services: Sequence[str] | None = None,
           settings: ScalingConfig | None = None, policies: Sequence[str] = DEFAULT_POLICIES,
           with_actual: bool = False) -> list[dict[str, Any]]:
    """Replay ``[start, end)`` of ``history`` (canonical rows: ``throughput``, and ``replicas`` for the start and the
    actual policy; the days before ``start`` train the forecasts) for each service under ``policies``.

    :returns: one row per service and policy, plus ``service='TOTAL'`` rows per policy.
    :raises DataError: when a service has no load in the window.
    """
    import numpy as np
    import pandas as pd

    settings = settings or policy_settings()
    rs = ReplaySettings.from_settings(settings)
    first, last = utc(start), utc(end)
    if last <= first:
        raise DataError(f"replay window [{first.isoformat()}, {last.isoformat()}) is empty")
    names = list(services) if services else [s.name for s in config.services]
    step = pd.Timedelta(seconds=rs.step_s)
    rows: list[dict[str, Any]] = []
    order = [*(["actual"] if with_actual else []), *policies]
    for name in names:
        svc = config.service(name)
        mine = history[history["service"] == name]
        series = mine[mine["metric"] == "throughput"]
        ts = pd.to_datetime(series["ts"], utc=True)
        if not ((ts >= first) & (ts < last)).any():
            raise DataError(f"replay: service {name!r} has no throughput between {first.isoformat()} and {last.isoformat()}")
        y = pd.Series(series["value"].to_numpy(float), index=ts).groupby(level=0).mean()
        grid = pd.date_range(min(y.index.min().floor(step), first), last, freq=step, inclusive="left")
        y = y.reindex(grid)
        begin = int(grid.searchsorted(first))
        reps = mine[mine["metric"] == "replicas"]
        rep = pd.Series(reps["value"].to_numpy(float), index=pd.to_datetime(reps["ts"], utc=True)).groupby(level=0).mean()
        before = rep[rep.index <= first]
        initial = int(before.iloc[-1]) if len(before) else None
        sim = simulated_service(config, svc, settings)
        results = replay_trace(grid, y.to_numpy(float), sim, kernel_settings(config, svc, settings), policies, config.forecasting, rs,
                               cost_per_replica_hour=svc.cost_per_replica_hour,
                               replicas_for=lambda load, s=svc: config.replicas_for(s, load),
                               scheduled=lambda at, n=name: scheduled_bounds(settings.scheduled, n, at), start=begin,
                               initial_replicas=initial)
        if with_actual:
            results["actual"] = actual_result(grid, y.to_numpy(float), rep.reindex(grid).to_numpy(float), sim,
                                              svc.cost_per_replica_hour, begin)
        for policy in order:
            rows.append({"service": name, **results[policy].to_dict()})
    for policy in order:
        mine = [r for r in rows if r["policy"] == policy]
        rows.append({"service": "TOTAL", "policy": policy,
                     "slo_violation_minutes": round(sum(r["slo_violation_minutes"] for r in mine), 1),
                     "replica_hours": round(sum(r["replica_hours"] for r in mine), 2),
                     "cost_usd": round(sum(r["cost_usd"] for r in mine), 2),
                     "scale_actions": sum(r["scale_actions"] for r in mine),
                     "floor_trusted_share": round(float(np.mean([r["floor_trusted_share"] for r in mine])) if mine else 0.0, 3)})
    return rows
