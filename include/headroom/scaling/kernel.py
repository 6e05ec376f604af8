"""The scaling kernel: ``next_replicas(state, signals, settings) -> Decision``, the one function both the live
``plan_scaling`` and the policy replay call. Pure, deterministic, no pandas.

Order of the rules (the Kubernetes horizontal controller's, plus headroom's alarm and floors):

1. current replicas outside [min, max] by more than the step limit -> an alarm that carries the planned move
   to the bound (``Decision.planned``), for a human to approve;
2. error rate above the alarm level -> alarm, never scale; otherwise replicas outside [min, max] go straight
   to the bound, no metrics, no stabilization (the controller's "Current number of replicas above
   Spec.MaxReplicas");
3. zero replicas -> ``ceil(load / per-replica load at target)`` (the replica calculator's usage ratio when
   ``currentReplicas == 0``), within [min, max] and the step limit;
4. the HPA rule per metric (``ceil(current x ratio)``, tolerance, pods without metrics counted as the
   replica calculator does), the larger of CPU and memory; when the CPU is saturated (``saturated_cpu``, combined
   policy) the replicas the measured load needs at the CPU target, if more (a saturated CPU ratio understates the
   demand: CPU stops at 100 %, requests do not); an observed cpu_bound finding's step;
5. the stabilization windows over the recommendation history; a target seen for the first time (no
   history) first records its current replicas as a recommendation, as the controller does, so it never
   scales in during the first scale-down window;
6. predictive and scheduled floors raise the answer, never lower it; a scheduled cap lowers it; scale-in
   is quicker (the agreed scale-down window replaces the stabilization window and caps the scale-in
   cooldown) only when a trusted forecast agrees with it;
7. the rate policies, [min, max], the step limit, the cooldowns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING
from collections.abc import Sequence

from include.headroom.scaling.policy import Behavior, Recommendation, ScaleEvent, rate_limit, stabilize

if TYPE_CHECKING:
    from include.headroom.config import HeadroomConfig
    from include.headroom.catalog import Service
    from include.headroom.scaling.settings import ScalingConfig


class Action(str, Enum):  # noqa: UP042 (str values travel through XCom and the audit trail)
    SCALE = "scale"
    ALARM = "alarm"
    NONE = "none"
    SKIP = "skip"


@dataclass(frozen=True)
class ScalingState:
    """What the controller remembers about one target at ``now`` (seconds since the epoch).

    :param current: replicas the target runs now (0 = scaled to zero).
    :param history: earlier unstabilized recommendations (the stabilization windows read them).
    :param events: earlier applied changes (rate policies and cooldowns).
    :param first_seen: no memory of this target yet (a new target, or the controller's memory was lost):
        the current replicas are recorded as a recommendation first.
    """

    now: float
    current: int
    history: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()
    first_seen: bool = False


@dataclass(frozen=True)
class Signals:
    """What the kernel sees at ``now``; ``None`` = not measured.

    :param cpu: mean CPU utilization (percent of request) of the pods that reported one.
    :param pods_reporting: how many pods the CPU/memory means come from (``None`` = all of them).
    :param load_replicas: replicas the current load needs at the CPU target (``HeadroomConfig.replicas_for``);
        used to scale from zero, where there is no per-pod utilization.
    :param predictive_floor: replicas a *trusted* forecast needs at the lead time (``None`` when untrusted).
    """

    cpu: float | None = None
    memory: float | None = None
    error_rate: float | None = None
    pods_reporting: int | None = None
    load_replicas: int | None = None
    cpu_bound_finding: str | None = None
    predictive_floor: int | None = None
    predictive_reason: str = ""
    scheduled_floor: int | None = None
    scheduled_cap: int | None = None
    scheduled_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class KernelSettings:
    """The figures the kernel needs for one target (from scaling.yaml, the tier's HPA profile and the catalog)."""

    min_replicas: int
    max_replicas: int
    cpu_target: float
    memory_target: float
    tolerance: float
    behavior: Behavior
    max_step: int
    scale_out_cooldown_s: int
    scale_in_cooldown_s: int
    alarm_error_rate: float
    scale_out_step: int
    agreed_scale_down_stabilization_s: int | None = None  # scale-down window when a trusted forecast agrees
    trusted_cpu_target: float | None = None  # the HPA's CPU target while a trusted forecast's floor holds (None: cpu_target)
    saturated_cpu: float | None = None  # at or above this mean CPU the load's replicas are a candidate too (None: CPU rule only)

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"min_replicas={self.min_replicas} max_replicas={self.max_replicas} must satisfy 0 <= min <= max")


@dataclass(frozen=True)
class Decision:
    """The kernel's answer. ``desired`` is what to run; ``planned`` the move an alarm proposes (out of bounds).

    ``recommendation`` is the unstabilized recommendation to remember (``None``: none was made); ``seed`` the
    replicas recorded as a recommendation because the target was first seen.
    """

    action: Action
    rule: str
    reason: str
    desired: int
    recommendation: int | None
    floor: int | None = None
    planned: int | None = None
    seed: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def kernel_settings(config: HeadroomConfig, service: Service, settings: ScalingConfig) -> KernelSettings:
    """The kernel's figures for a catalog service."""
    profile_name = config.tier(service.tier).hpa_profile
    profile = config.hpa_profile(service)
    return KernelSettings(
        min_replicas=service.min_replicas, max_replicas=service.max_replicas, cpu_target=profile.cpu_target,
        memory_target=profile.memory_target, tolerance=config.scaling.tolerance, behavior=settings.behavior(profile_name),
        max_step=settings.max_step(profile_name), scale_out_cooldown_s=settings.scale_out_cooldown_s,
        scale_in_cooldown_s=settings.scale_in_cooldown_s, alarm_error_rate=config.scaling.alarm_error_rate,
        scale_out_step=config.scaling.scale_out_step, agreed_scale_down_stabilization_s=settings.agreed_scale_down_stabilization_s,
        trusted_cpu_target=settings.trusted_cpu_target, saturated_cpu=settings.saturated_cpu,
    )


def metric_replicas(current: int, value: float, target: float, tolerance: float, reporting: int | None = None) -> int:
    """The replica calculator for one utilization metric (``GetResourceReplicas``), all pods ready.

    ``value`` is the mean over the ``reporting`` pods that have a metric (default: all ``current``). Pods
    without one count as using ``max(100, target)`` percent on a scale-down and 0 % on a scale-up; when that
    flips the direction or lands inside the tolerance, the answer is ``current``.
    """
    if current < 1:
        raise ValueError(f"current={current!r} replicas must be >= 1 (scale from zero has no per-pod metric)")
    if target <= 0:
        raise ValueError(f"metric target={target!r} must be > 0")
    reporting = current if reporting is None else reporting
    if not 0 < reporting <= current:
        raise ValueError(f"reporting={reporting!r} pods must be in [1, current={current}]")
    ratio = value / target
    if reporting == current:
        return current if abs(ratio - 1.0) <= tolerance else math.ceil(ratio * current)
    missing = current - reporting
    if ratio < 1.0:
        total = value * reporting + max(100.0, target) * missing
    elif ratio > 1.0:
        total = value * reporting
    else:
        return current
    new_ratio = total / current / target
    if abs(new_ratio - 1.0) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposed = math.ceil(new_ratio * current)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


def _cooldown(now: float, direction: int, events: Sequence[ScaleEvent], settings: KernelSettings) -> float | None:
    """Seconds left of the cooldown for a move in ``direction`` (+1 out, -1 in), or None."""
    window = settings.scale_out_cooldown_s if direction > 0 else settings.scale_in_cooldown_s
    last = max((e.at for e in events if e.change), default=None)
    if last is None or now - last >= window:
        return None
    return window - (now - last)


def _bounded(state: ScalingState, settings: KernelSettings) -> Decision | None:
    current, low, high = state.current, settings.min_replicas, settings.max_replicas
    if current == 0 or low <= current <= high:
        return None
    bound = high if current > high else low
    side = "above max" if current > high else "below min"
    why = f"target runs {current} replicas, {side} [{low}, {high}]: move to {bound}"
    if abs(bound - current) <= settings.max_step:
        return Decision(Action.SCALE, "out_of_bounds", why, bound, bound, planned=bound)
    return Decision(Action.ALARM, "out_of_bounds", f"{why} is planned, but it is more than the step limit of {settings.max_step}: "
                    "a human must approve the move", current, None, planned=bound)


def next_replicas(state: ScalingState, signals: Signals, settings: KernelSettings) -> Decision:
    """The replicas one target should run after ``state.now`` given ``signals`` (see the module docstring for the rules)."""
    bounded = _bounded(state, settings)
    if bounded is not None and bounded.action is Action.ALARM:
        return bounded
    current, now = state.current, state.now
    if signals.error_rate is not None and signals.error_rate > settings.alarm_error_rate:
        return Decision(Action.ALARM, "error_rate_alarm",
                        f"error rate {signals.error_rate:.1%} > {settings.alarm_error_rate:.0%}: "
                        "more replicas do not fix a failing dependency",
                        current, None)
    if bounded is not None:
        return bounded
    history = tuple(state.history)
    seed = None
    if state.first_seen and settings.behavior.scale_down.stabilization_s > 0:
        seed = current  # the controller's maybeInitScaleDownStabilizationWindow
        history = (*history, Recommendation(now, current))
    rule, reason, recommendation = "steady", "metrics inside the tolerance band", current
    if current == 0:
        if signals.load_replicas is None:
            return Decision(Action.NONE, "scaled_to_zero", "target runs 0 replicas and no load is measured", 0, 0, seed=seed)
        wanted = min(max(signals.load_replicas, settings.min_replicas), settings.max_replicas, settings.max_step)
        if wanted == 0:
            return Decision(Action.NONE, "scaled_to_zero", "no load: stays at 0 replicas", 0, 0, seed=seed)
        return Decision(Action.SCALE, "scale_from_zero", f"load needs {signals.load_replicas} replicas at target; from 0 to {wanted}",
                        wanted, signals.load_replicas, seed=seed)
    candidates = []
    cpu_target = settings.cpu_target
    if signals.predictive_floor is not None and settings.trusted_cpu_target is not None:
        cpu_target = settings.trusted_cpu_target  # the floor covers the forecast peak: the HPA may run hotter
    if signals.cpu is not None:
        candidates.append(("hpa_cpu", metric_replicas(current, signals.cpu, cpu_target, settings.tolerance,
                                                      signals.pods_reporting)))
    if signals.memory is not None:
        candidates.append(("hpa_memory", metric_replicas(current, signals.memory, settings.memory_target, settings.tolerance,
                                                         signals.pods_reporting)))
    if candidates:
        rule, recommendation = max(candidates, key=lambda c: c[1])
        reason = ", ".join(f"{m} {v:.1f}% vs target {t:.0f}%" for m, v, t in
                           (("cpu", signals.cpu, cpu_target), ("memory", signals.memory, settings.memory_target)) if v is not None)
        if signals.pods_reporting is not None and signals.pods_reporting < current:
            reason += f" (from {signals.pods_reporting} of {current} pods)"
    saturated = settings.saturated_cpu is not None and signals.cpu is not None and signals.cpu >= settings.saturated_cpu
    if saturated and signals.load_replicas is not None and signals.load_replicas > recommendation:
        # CPU cannot pass 100 %: a saturated pod's ratio understates the demand, the measured load does not
        rule, recommendation = "saturated_load", signals.load_replicas
        reason += f"; cpu saturated (>= {settings.saturated_cpu:.0f}%): the load needs {signals.load_replicas} replicas at target"
    if signals.cpu_bound_finding and recommendation < current + settings.scale_out_step:
        rule, recommendation = "cpu_bound_finding", current + settings.scale_out_step
        reason = f"{signals.cpu_bound_finding}: scale out by {settings.scale_out_step}"
    behavior = settings.behavior
    floor_agrees = signals.predictive_floor is not None and signals.predictive_floor <= recommendation < current
    if floor_agrees and settings.agreed_scale_down_stabilization_s is not None:
        behavior = replace(behavior, scale_down=replace(behavior.scale_down, stabilization_s=settings.agreed_scale_down_stabilization_s))
    desired = stabilize(now, current, recommendation, history, behavior)
    if desired == current and recommendation != current:
        why = "the first stabilization window of a newly seen target" if seed is not None else "the stabilization window"
        rule, reason = "stabilization", f"{rule} recommends {recommendation} but {why} holds {current}"
    floor = None
    cap = signals.scheduled_cap
    if cap is not None and desired > cap:
        rule, desired, reason = "scheduled_cap", cap, f"scheduled rules {list(signals.scheduled_rules)} cap replicas at {cap}"
    floors = [(f, r, why) for f, r, why in ((signals.predictive_floor, "predictive_floor", signals.predictive_reason),
                                            (signals.scheduled_floor, "scheduled_floor",
                                             f"scheduled rules {list(signals.scheduled_rules)} hold at least {signals.scheduled_floor}"))
              if f is not None]
    if floors:
        floor, floor_rule, floor_why = max(floors, key=lambda f: f[0])
        if floor > desired:
            # a floor only ever raises the reactive answer, so a forecast or a schedule alone never scales in
            if floor > current:
                rule, reason = floor_rule, floor_why
            else:
                reason += f"; scale-in stops at the {floor_rule} of {floor}"
            desired = floor
    limited = rate_limit(now, current, desired, settings.min_replicas, settings.max_replicas, state.events, behavior)
    limited = max(min(limited, current + settings.max_step), current - settings.max_step)
    if limited != desired:
        reason += f"; limited to {limited} by the rate policies, [min, max] and the step limit of {settings.max_step}"
    desired = int(min(max(limited, settings.min_replicas), settings.max_replicas))
    if desired != current:
        cooldown = settings
        if desired < current and floor_agrees and settings.agreed_scale_down_stabilization_s is not None:
            cooldown = replace(settings, scale_in_cooldown_s=min(settings.scale_in_cooldown_s, settings.agreed_scale_down_stabilization_s))
        wait = _cooldown(now, 1 if desired > current else -1, state.events, cooldown)
        if wait is not None:
            rule, reason, desired = "cooldown", f"{rule} wants {desired} but the cooldown has {wait:.0f} s left", current
    if desired != current:
        return Decision(Action.SCALE, rule, reason, desired, int(recommendation), floor, seed=seed)
    if rule not in ("cooldown", "stabilization"):
        rule = "steady"
    return Decision(Action.NONE, rule, reason, desired, int(recommendation), floor, seed=seed)
