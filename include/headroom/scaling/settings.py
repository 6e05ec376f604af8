"""Scaling settings from ``scaling.yaml``: HPA profiles and behaviours, reactive and predictive rules, safety, approval, replay.

One frozen :class:`ScalingConfig` holds the whole file; ``get_config().scaling`` and :func:`policy_settings` are
the same object. That the scheduled rules name catalog services is checked where both files meet
(:class:`include.headroom.config.HeadroomConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

from include.headroom.configfile import build as _build
from include.headroom.configfile import load
from include.headroom.configfile import require as _require
from include.headroom.exceptions import ConfigError
from include.headroom.scaling.policy import Behavior, PolicyType, forecast_trusted, ScalingPolicy, ScalingRules, ScheduledRule, SelectPolicy

FILE = "scaling.yaml"


@dataclass(frozen=True)
class RatePolicy:
    stabilization_s: int
    percent: float
    period_s: int


@dataclass(frozen=True)
class HpaProfile:
    min_replicas: int
    max_replicas: int
    cpu_target: float
    memory_target: float
    scale_up: RatePolicy
    scale_down: RatePolicy

    def __post_init__(self) -> None:
        _require(
            1 <= self.min_replicas <= self.max_replicas,
            f"hpa profile: min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 1 <= min <= max",
        )
        _require(0 < self.cpu_target <= 100, f"hpa profile: cpu_target={self.cpu_target} must be in (0, 100]")


@dataclass(frozen=True)
class VerifySettings:
    converge_timeout_s: int
    worse_if_cpu_rises_by: float


@dataclass(frozen=True)
class ScalingConfig:
    """Everything ``scaling.yaml`` sets: what the decision engine, the guard rails, the executors and the replay read."""

    tolerance: float
    cooldown_s: int
    scale_out_step: int
    alarm_error_rate: float
    actuation_delay_s: int  # new replicas serve this long after a scale-out is decided (the live lead time and the replay's pods)
    cpu_target: float
    memory_target: float
    hpa_profiles: Mapping[str, HpaProfile]
    approval_cost_usd_month: float
    behaviors: Mapping[str, Behavior]
    scale_out_cooldown_s: int
    scale_in_cooldown_s: int
    max_step_replicas: Mapping[str, int]
    max_data_age_s: int
    current_interval_grace_s: int
    schedule_period_s: int
    verify: VerifySettings
    floor_metric: str
    planned_capacity_hours: int
    scheduled: tuple[ScheduledRule, ...]
    replay_step_s: int
    overload_utilization: float
    expiry_s: int
    high_impact_requires_approval: bool
    confidence_threshold: float = 0.8
    floor_quantile: str = "upper"  # the forecast column a predictive floor reads: upper (yhat_upper) or median (yhat)
    agreed_scale_down_stabilization_s: int | None = None  # scale-down window when a trusted forecast agrees with the scale-in
    trusted_cpu_target: float | None = None  # the HPA's CPU target while a trusted forecast's floor holds
    floor_utilization: float | None = None  # a floor's load per replica as a share of capacity (None: at the CPU target)
    trust_coverage: float | None = None  # a forecast is also trusted when this share of the actuals stayed within its upper quantile
    saturated_cpu: float | None = None  # combined policy: at or above this mean CPU (%) a scale-out is sized from the measured load
    replay: Mapping[str, Any] = field(default_factory=dict)  # the replay's simulated service and forecast schedule

    def __post_init__(self) -> None:
        _require(0 <= self.tolerance < 1, f"scaling.reactive.tolerance={self.tolerance!r} must be in [0, 1)")
        _require(0 < self.alarm_error_rate < 1, f"scaling.reactive.alarm_error_rate={self.alarm_error_rate!r} must be in (0, 1)")
        _require({"general", "critical"} <= set(self.hpa_profiles), "scaling.hpa_profiles must define 'general' and 'critical'")
        _require(
            self.floor_quantile in ("upper", "median"),
            f"scaling.yaml predictive_floor.quantile={self.floor_quantile!r} must be upper or median",
        )
        for value, high, key in (
            (self.floor_utilization, 1, "predictive_floor.utilization"),
            (self.trusted_cpu_target, 100, "predictive_floor.trusted_cpu_target"),
            (self.trust_coverage, 1, "predictive.trust_coverage"),
            (self.saturated_cpu, 100, "target_tracking.saturated_cpu_utilization"),
        ):  # optional settings: unset (None) or within (0, high]
            _require(value is None or 0 < value <= high, f"scaling.yaml {key}={value!r} must be in (0, {high}]")
        _require(self.actuation_delay_s >= 0, f"scaling.yaml predictive.actuation_delay_s={self.actuation_delay_s!r} must be >= 0")
        missing = sorted(set(self.behaviors) - set(self.max_step_replicas))
        _require(not missing, f"scaling.yaml safety.max_step_replicas lacks profiles {missing}")

    @property
    def lead_time_s(self) -> int:
        """How far ahead a live predictive floor looks: the actuation delay plus one decision period (the scaling_actions
        schedule), so the replicas it asks for serve before the load arrives. The replay derives its own the same way."""
        return self.actuation_delay_s + self.schedule_period_s

    def forecast_trusted(self, mape: float | None, coverage: float | None) -> bool:
        """The trust rule of predictive floors, live and in the replay: the forecast's measured MAPE is at most
        ``1 - confidence_threshold``, or at least ``trust_coverage`` of the actuals stayed within its upper quantile.
        A measure that is missing (None or NaN) does not count (:func:`include.headroom.scaling.policy.forecast_trusted`)."""
        return forecast_trusted(mape, coverage, 1.0 - self.confidence_threshold, self.trust_coverage)

    def behavior(self, profile: str) -> Behavior:
        try:
            return self.behaviors[profile]
        except KeyError:
            raise ConfigError(f"scaling.yaml: no hpa profile {profile!r}; have {sorted(self.behaviors)}") from None

    def max_step(self, profile: str) -> int:
        try:
            return int(self.max_step_replicas[profile])
        except KeyError:
            raise ConfigError(f"scaling.yaml safety.max_step_replicas has no entry for profile {profile!r}") from None

    def check_services(self, services: Iterable[str]) -> None:
        """:raises ConfigError: when a scheduled rule names a service that is not in ``services``."""
        known = set(services)
        for rule in self.scheduled:
            unknown = sorted(set(rule.services) - known)
            _require(not unknown, f"scaling.yaml scheduled rule {rule.name!r} names unknown services {unknown}")


def _rate(raw: Mapping[str, Any]) -> RatePolicy:
    return _build(RatePolicy, raw, "scaling.hpa_profiles")


def _rules(rate: RatePolicy, extra: Mapping[str, Any], where: str) -> ScalingRules:
    policies = [ScalingPolicy(PolicyType.PERCENT, float(rate.percent), int(rate.period_s))]
    for p in extra.get("pods_policies", ()):
        policies.append(ScalingPolicy(PolicyType.PODS, float(p["value"]), int(p["period_s"])))
    try:
        select = SelectPolicy(str(extra.get("select_policy", "max")))
    except ValueError as exc:
        raise ConfigError(f"scaling.yaml {where}: {exc}") from exc
    return ScalingRules(int(rate.stabilization_s), tuple(policies), select)


def _clock(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"scaling.yaml {where}: {value!r} is not a HH:MM time") from exc


def _scheduled(raw: Any) -> tuple[ScheduledRule, ...]:
    rules = []
    for i, r in enumerate(raw or ()):
        where = f"scheduled[{i}] ({r.get('name', '?')})"
        rules.append(
            ScheduledRule(
                name=str(r["name"]),
                services=tuple(r["services"]),
                timezone=str(r["timezone"]),
                days=tuple(r["days"]),
                start=_clock(r["start"], where),
                end=_clock(r["end"], where),
                min_replicas=int(r["min_replicas"]),
                max_replicas=int(r["max_replicas"]) if r.get("max_replicas") is not None else None,
            )
        )
    return tuple(rules)


def _floor_utilization(floor: Mapping[str, Any]) -> float | None:
    """A floor's load per replica as a share of capacity: ``predictive_floor.utilization`` when set, else the trusted CPU
    target (the utilisation the HPA holds while a trusted floor does, so floor and HPA aim at one level), else None
    (the tier's CPU target)."""
    if floor.get("utilization") is not None:
        return float(floor["utilization"])
    return float(floor["trusted_cpu_target"]) / 100.0 if floor.get("trusted_cpu_target") is not None else None


def parse_scaling(raw: Mapping[str, Any]) -> ScalingConfig:
    """The settings of a ``scaling.yaml`` mapping.

    :raises ConfigError: naming the key at fault.
    """
    try:
        profiles = {
            name: _build(
                HpaProfile, {**p, "scale_up": _rate(p["scale_up"]), "scale_down": _rate(p["scale_down"])}, f"scaling.hpa_profiles.{name}"
            )
            for name, p in raw["hpa_profiles"].items()
        }
        behaviors = {}
        for name, profile in profiles.items():
            extra = (raw.get("behavior") or {}).get(name, {})
            behaviors[name] = Behavior(
                _rules(profile.scale_up, extra.get("scale_up", {}), f"behavior.{name}.scale_up"),
                _rules(profile.scale_down, extra.get("scale_down", {}), f"behavior.{name}.scale_down"),
            )
        reactive, target, predictive, floor = raw["reactive"], raw["target_tracking"], raw["predictive"], raw["predictive_floor"]
        safety, cooldowns, replay, approval = raw["safety"], raw["cooldowns"], raw["replay"], raw["approval"]
        return ScalingConfig(
            tolerance=float(reactive["tolerance"]),
            cooldown_s=int(reactive["cooldown_s"]),
            scale_out_step=int(reactive["scale_out_step"]),
            alarm_error_rate=float(reactive["alarm_error_rate"]),
            actuation_delay_s=int(predictive["actuation_delay_s"]),
            cpu_target=float(target["cpu_utilization"]),
            memory_target=float(target["memory_utilization"]),
            hpa_profiles=profiles,
            approval_cost_usd_month=float(approval["cost_threshold_usd_month"]),
            behaviors=behaviors,
            scale_out_cooldown_s=int(cooldowns["scale_out_s"]),
            scale_in_cooldown_s=int(cooldowns["scale_in_s"]),
            max_step_replicas={k: int(v) for k, v in safety["max_step_replicas"].items()},
            max_data_age_s=int(safety["max_data_age_s"]),
            current_interval_grace_s=int(safety["current_interval_grace_s"]),
            schedule_period_s=int(safety["schedule_period_s"]),
            verify=VerifySettings(int(safety["verify"]["converge_timeout_s"]), float(safety["verify"]["worse_if_cpu_rises_by"])),
            floor_metric=str(floor["metric"]),
            planned_capacity_hours=int(floor["planned_capacity_hours"]),
            scheduled=_scheduled(raw.get("scheduled")),
            replay_step_s=int(replay["step_s"]),
            overload_utilization=float(replay["overload_utilization"]),
            expiry_s=int(approval["expiry_s"]),
            high_impact_requires_approval=bool(approval.get("high_impact_requires_approval", True)),
            confidence_threshold=float(predictive["confidence_threshold"]),
            floor_quantile=str(floor.get("quantile", "upper")),
            agreed_scale_down_stabilization_s=(
                int(floor["agreed_scale_down_stabilization_s"]) if floor.get("agreed_scale_down_stabilization_s") is not None else None
            ),
            trusted_cpu_target=float(floor["trusted_cpu_target"]) if floor.get("trusted_cpu_target") is not None else None,
            floor_utilization=_floor_utilization(floor),
            trust_coverage=float(predictive["trust_coverage"]) if predictive.get("trust_coverage") is not None else None,
            saturated_cpu=float(target["saturated_cpu_utilization"]) if target.get("saturated_cpu_utilization") is not None else None,
            replay=dict(replay),
        )
    except KeyError as exc:
        raise ConfigError(f"scaling.yaml: missing key {exc}") from exc


def load_scaling(directory: Path) -> ScalingConfig:
    """``scaling.yaml`` of ``directory`` (read once per process)."""
    return load(directory / FILE, parse_scaling)


def policy_settings(directory: str | Path | None = None) -> ScalingConfig:
    """The scaling settings of ``directory`` (default: the active configuration), checked against its catalog."""
    from include.headroom.config import config_directory, get_config, load_config

    path = config_directory(directory)
    return get_config().scaling if path == config_directory() else load_config(path).scaling
