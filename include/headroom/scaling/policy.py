"""The Kubernetes HPA algorithm (autoscaling/v2 behaviour) and scheduled time rules (their settings: ``scaling/settings.py``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import Enum
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.headroom.exceptions import ConfigError, InvalidArgumentError


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


# -- target names --------------------------------------------------------------------------------------

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # RFC 1123 subdomain
K8S_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label


# -- predictive floors ---------------------------------------------------------------------------------

def floor_replicas(load: float, capacity_per_replica_rps: float, utilization: float | None,
                   replicas_for: Callable[[float], int]) -> int:
    """Replicas a predictive floor holds for ``load`` (req/s): at ``utilization`` (``predictive_floor.utilization``)
    of each replica's capacity when set, else ``replicas_for(load)`` (at the CPU target). Unclipped."""
    if utilization is None:
        return int(replicas_for(max(load, 0.0)))
    return int(math.ceil(max(load, 0.0) / (capacity_per_replica_rps * utilization)))


def forecast_trusted(mape: float | None, coverage: float | None, max_mape: float, min_coverage: float | None) -> bool:
    """The trust rule of predictive floors, live and in the replay: the forecast's measured MAPE is at most ``max_mape``,
    or at least ``min_coverage`` of the actuals stayed within its upper quantile. A missing measure (None, NaN) does not count."""
    if mape is not None and mape == mape and mape <= max_mape + 1e-9:  # 1 - 0.8 is 0.19999999999999996 in floats
        return True
    return min_coverage is not None and coverage is not None and coverage == coverage and coverage >= min_coverage
