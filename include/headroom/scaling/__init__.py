"""Scaling: the decision kernel (reactive HPA, predictive and scheduled floors), guard rails, executors and policy replay."""

from __future__ import annotations

__all__ = [
    "ScalingDecision",
    "apply_decision",
    "next_replicas",
    "plan_scaling",
    "planned_capacity",
    "policy_settings",
    "replay",
    "route_decisions",
]


def __getattr__(name: str):  # imported lazily: the DAG files stay cheap to parse
    if name in ("ScalingDecision", "plan_scaling", "planned_capacity"):
        from include.headroom.scaling import decide

        return getattr(decide, name)
    if name == "next_replicas":
        from include.headroom.scaling.kernel import next_replicas

        return next_replicas
    if name == "apply_decision":
        from include.headroom.scaling.executors import apply_decision

        return apply_decision
    if name == "policy_settings":
        from include.headroom.scaling.settings import policy_settings

        return policy_settings
    if name == "replay":
        from include.headroom.scaling.replay import replay

        return replay
    if name == "route_decisions":
        from include.headroom.scaling.routing import route_decisions

        return route_decisions
    raise AttributeError(f"module 'include.headroom.scaling' has no attribute {name!r}")
