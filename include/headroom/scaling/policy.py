"""The Kubernetes HPA algorithm (autoscaling/v2 behaviour), scheduled time rules and the scaling settings from scaling.yaml."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.headroom.exceptions import ConfigError, InvalidArgumentError

if TYPE_CHECKING:
    from include.headroom.config import HeadroomConfig, RatePolicy


class SelectPolicy(str, Enum):
    MAX = "max"
    MIN = "min"
    DISABLED = "disabled"


class PolicyType(str, Enum):
    PERCENT = "percent"
    PODS = "pods"


@dataclass(frozen=True)
class ScalingPolicy:
    """One HPA rate policy: at most ``value`` percent or pods per ``period_s``."""

    type: PolicyType
    value: float
    period_s: int

    def __post_init__(self) -> None:
        if self.value <= 0 or self.period_s <= 0:
            raise ConfigError(f"scaling policy {self.type.value}: value={self.value!r} and period_s={self.period_s!r} must be > 0")


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules``: a stabilization window, rate policies and how to pick among them."""

    stabilization_s: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = SelectPolicy.MAX

    def __post_init__(self) -> None:
        if self.stabilization_s < 0:
            raise ConfigError(f"stabilization_s={self.stabilization_s!r} must be >= 0")


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


@dataclass(frozen=True)
class Recommendation:
    """An unstabilized recommendation the algorithm made at ``at`` (seconds since the epoch)."""

    at: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """A change of replicas applied at ``at`` (seconds since the epoch); positive = scale up."""

    at: float
    change: int


def replica_count(current: int, metrics: Sequence[tuple[float, float]], tolerance: float) -> int:
    """``desiredReplicas = ceil(currentReplicas * currentMetricValue / desiredMetricValue)``, max over metrics.

    A metric whose ratio is within ``tolerance`` of 1 proposes ``current``.

    :param metrics: pairs of (current value, target value).
    """
    if current < 1:
        raise InvalidArgumentError(f"current={current!r} replicas must be >= 1")
    proposals = []
    for value, target in metrics:
        if target <= 0:
            raise InvalidArgumentError(f"metric target={target!r} must be > 0")
        ratio = value / target
        proposals.append(current if abs(ratio - 1.0) <= tolerance else math.ceil(ratio * current))
    return max(proposals) if proposals else current


def stabilize(now: float, current: int, desired: int, history: Sequence[Recommendation], behavior: Behavior) -> int:
    """HPA ``stabilizeRecommendationWithBehaviors``: within the windows, up takes the min and down the max of the recommendations."""
    up, down = desired, desired
    up_cutoff, down_cutoff = now - behavior.scale_up.stabilization_s, now - behavior.scale_down.stabilization_s
    for rec in history:
        if rec.at > up_cutoff:
            up = min(rec.replicas, up)
        if rec.at > down_cutoff:
            down = max(rec.replicas, down)
    out = current
    if out < up:
        out = up
    if out > down:
        out = down
    return out


def _changed_in_period(now: float, period_s: int, events: Sequence[ScaleEvent], up: bool) -> int:
    return sum(abs(e.change) for e in events if e.at > now - period_s and (e.change > 0) == up and e.change != 0)


def scale_up_limit(now: float, current: int, events: Sequence[ScaleEvent], rules: ScalingRules) -> int:
    """HPA ``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    pick, result = (min, math.inf) if rules.select_policy is SelectPolicy.MIN else (max, -math.inf)
    for policy in rules.policies:
        start = current - _changed_in_period(now, policy.period_s, events, True) + _changed_in_period(now, policy.period_s, events, False)
        proposed = start + int(policy.value) if policy.type is PolicyType.PODS else math.ceil(start * (1 + policy.value / 100.0))
        result = pick(result, proposed)
    return int(result) if rules.policies else current


def scale_down_limit(now: float, current: int, events: Sequence[ScaleEvent], rules: ScalingRules) -> int:
    """HPA ``calculateScaleDownLimitWithBehaviors``."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    pick, result = (max, -math.inf) if rules.select_policy is SelectPolicy.MIN else (min, math.inf)
    for policy in rules.policies:
        start = current - _changed_in_period(now, policy.period_s, events, True) + _changed_in_period(now, policy.period_s, events, False)
        proposed = start - int(policy.value) if policy.type is PolicyType.PODS else int(start * (1 - policy.value / 100.0))
        result = pick(result, proposed)
    return int(result) if rules.policies else current


def rate_limit(
    now: float, current: int, desired: int, min_replicas: int, max_replicas: int, events: Sequence[ScaleEvent], behavior: Behavior
) -> int:
    """HPA ``convertDesiredReplicasWithBehaviorRate``: the rate policies, then [min, max]."""
    if desired > current:
        limit = max(scale_up_limit(now, current, events, behavior.scale_up), current)
        return min(desired, max_replicas, limit)
    if desired < current:
        limit = min(scale_down_limit(now, current, events, behavior.scale_down), current)
        return max(desired, min_replicas, limit)
    return min(max(desired, min_replicas), max_replicas)


# -- scheduled rules ------------------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ScheduledRule:
    """Replicas floor (and optional cap) for ``services`` on ``days`` between ``start`` and ``end``, local time in ``timezone``.

    A window whose end is before its start runs over midnight and belongs to the day it starts on.
    """

    name: str
    services: tuple[str, ...]
    timezone: str
    days: tuple[str, ...]
    start: time
    end: time
    min_replicas: int
    max_replicas: int | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"scaling.yaml scheduled rule {self.name!r}: unknown timezone={self.timezone!r}") from exc
        bad = [d for d in self.days if d not in DAYS]
        if bad or not self.days:
            raise ConfigError(
                f"scaling.yaml scheduled rule {self.name!r}: days={list(self.days)!r} must be a non-empty subset of {list(DAYS)}"
            )
        if self.min_replicas < 1 or (self.max_replicas is not None and self.max_replicas < self.min_replicas):
            raise ConfigError(
                f"scaling.yaml scheduled rule {self.name!r}: min_replicas={self.min_replicas} max_replicas={self.max_replicas} invalid"
            )
        if self.start == self.end:
            raise ConfigError(f"scaling.yaml scheduled rule {self.name!r}: start and end are both {self.start}")

    def active(self, at: datetime) -> bool:
        """Whether the rule holds at the (timezone-aware) instant ``at``."""
        if at.tzinfo is None:
            raise InvalidArgumentError(f"scheduled rule {self.name!r}: at={at!r} must be timezone-aware")
        local = at.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return DAYS[local.weekday()] in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return DAYS[local.weekday()] in self.days
        if clock < self.end:
            return DAYS[(local - timedelta(days=1)).weekday()] in self.days
        return False


def scheduled_bounds(rules: Sequence[ScheduledRule], service: str, at: datetime) -> tuple[int | None, int | None, list[str]]:
    """(floor, cap, names of active rules) for ``service`` at ``at``; floor wins over cap when they cross."""
    active = [r for r in rules if service in r.services and r.active(at)]
    floor = max((r.min_replicas for r in active), default=None)
    caps = [r.max_replicas for r in active if r.max_replicas is not None]
    return floor, (min(caps) if caps else None), [r.name for r in active]


# -- settings --------------------------------------------------------------------------------------

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # RFC 1123 subdomain
K8S_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label


@dataclass(frozen=True)
class VerifySettings:
    converge_timeout_s: int
    worse_if_cpu_rises_by: float


@dataclass(frozen=True)
class ScalingPolicySettings:
    """Everything in scaling.yaml the decision engine, the guard rails and the replay need beyond ``ScalingConfig``."""

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
    replay_actuation_delay_steps: int
    overload_utilization: float
    expiry_s: int
    high_impact_requires_approval: bool
    confidence_threshold: float = 0.8
    floor_quantile: str = "upper"  # the forecast column a predictive floor reads: upper (yhat_upper) or median (yhat)
    agreed_scale_down_stabilization_s: int | None = None  # scale-down window when a trusted forecast agrees with the scale-in
    trusted_cpu_target: float | None = None  # the HPA's CPU target while a trusted forecast's floor holds
    floor_utilization: float | None = None  # a floor's load per replica as a share of capacity (None: at the CPU target)
    replay: Mapping[str, Any] = field(default_factory=dict)  # the replay's simulated service and forecast schedule
    extra: Mapping[str, Any] = field(default_factory=dict)

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


def parse_policy_settings(raw: Mapping[str, Any], config: HeadroomConfig) -> ScalingPolicySettings:
    """Build the settings from the raw scaling.yaml mapping and the already validated ``config.scaling``."""
    try:
        behaviors = {}
        for name, profile in config.scaling.hpa_profiles.items():
            extra = (raw.get("behavior") or {}).get(name, {})
            behaviors[name] = Behavior(
                _rules(profile.scale_up, extra.get("scale_up", {}), f"behavior.{name}.scale_up"),
                _rules(profile.scale_down, extra.get("scale_down", {}), f"behavior.{name}.scale_down"),
            )
        rules = []
        for i, r in enumerate(raw.get("scheduled") or ()):
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
        known = {s.name for s in config.services}
        for rule in rules:
            unknown = sorted(set(rule.services) - known)
            if unknown:
                raise ConfigError(f"scaling.yaml scheduled rule {rule.name!r} names unknown services {unknown}")
        safety, cooldowns, replay = raw["safety"], raw["cooldowns"], raw["replay"]
        settings = ScalingPolicySettings(
            behaviors=behaviors,
            scale_out_cooldown_s=int(cooldowns["scale_out_s"]),
            scale_in_cooldown_s=int(cooldowns["scale_in_s"]),
            max_step_replicas={k: int(v) for k, v in safety["max_step_replicas"].items()},
            max_data_age_s=int(safety["max_data_age_s"]),
            current_interval_grace_s=int(safety["current_interval_grace_s"]),
            schedule_period_s=int(safety["schedule_period_s"]),
            verify=VerifySettings(int(safety["verify"]["converge_timeout_s"]), float(safety["verify"]["worse_if_cpu_rises_by"])),
            floor_metric=str(raw["predictive_floor"]["metric"]),
            planned_capacity_hours=int(raw["predictive_floor"]["planned_capacity_hours"]),
            scheduled=tuple(rules),
            replay_step_s=int(replay["step_s"]),
            replay_actuation_delay_steps=int(replay["actuation_delay_s"]) // int(replay["step_s"]),
            overload_utilization=float(replay["overload_utilization"]),
            expiry_s=int(raw["approval"]["expiry_s"]),
            high_impact_requires_approval=bool(raw["approval"].get("high_impact_requires_approval", True)),
            confidence_threshold=float(raw["predictive"]["confidence_threshold"]),
            floor_quantile=str(raw["predictive_floor"].get("quantile", "upper")),
            agreed_scale_down_stabilization_s=(
                int(raw["predictive_floor"]["agreed_scale_down_stabilization_s"])
                if raw["predictive_floor"].get("agreed_scale_down_stabilization_s") is not None
                else None
            ),
            trusted_cpu_target=(
                float(raw["predictive_floor"]["trusted_cpu_target"])
                if raw["predictive_floor"].get("trusted_cpu_target") is not None
                else None
            ),
            floor_utilization=(
                float(raw["predictive_floor"]["utilization"]) if raw["predictive_floor"].get("utilization") is not None else None
            ),
            replay=dict(replay),
        )
        if settings.floor_utilization is not None and not 0 < settings.floor_utilization <= 1:
            raise ConfigError(f"scaling.yaml predictive_floor.utilization={settings.floor_utilization!r} must be in (0, 1]")
        if settings.trusted_cpu_target is not None and not 0 < settings.trusted_cpu_target <= 100:
            raise ConfigError(f"scaling.yaml predictive_floor.trusted_cpu_target={settings.trusted_cpu_target!r} must be in (0, 100]")
        if settings.floor_quantile not in ("upper", "median"):
            raise ConfigError(f"scaling.yaml predictive_floor.quantile={settings.floor_quantile!r} must be upper or median")
    except KeyError as exc:
        raise ConfigError(f"scaling.yaml: missing key {exc}") from exc
    missing = sorted(set(behaviors) - set(settings.max_step_replicas))
    if missing:
        raise ConfigError(f"scaling.yaml safety.max_step_replicas lacks profiles {missing}")
    return settings


def floor_replicas(load: float, capacity_per_replica_rps: float, utilization: float | None, replicas_for: Any) -> int:
    """Replicas a predictive floor holds for ``load`` (req/s): at ``utilization`` (``predictive_floor.utilization``)
    of each replica's capacity when set, else ``replicas_for(load)`` (at the CPU target). Unclipped."""
    if utilization is None:
        return int(replicas_for(max(load, 0.0)))
    return int(math.ceil(max(load, 0.0) / (capacity_per_replica_rps * utilization)))


@lru_cache(maxsize=4)
def _load(directory: str) -> ScalingPolicySettings:
    from include.headroom.config import config_directory, get_config, load_config
    from include.headroom.configfile import read_yaml

    raw = read_yaml(Path(directory) / "scaling.yaml")
    config = get_config() if Path(directory) == config_directory() else load_config(directory)
    return parse_policy_settings(raw, config)


def policy_settings(directory: str | Path | None = None) -> ScalingPolicySettings:
    """The scaling settings from ``directory`` (default: the active configuration directory), loaded once."""
    from include.headroom.config import config_directory

    return _load(str(config_directory(directory)))
