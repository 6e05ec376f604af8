"""Guard rails checked before anything touches production: current interval, bounds, step limit, target ids, approval."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from collections.abc import Mapping

from include.headroom.catalog import TargetKind
from include.headroom.exceptions import GuardRailError
from include.headroom.scaling.policy import K8S_NAME, K8S_NAMESPACE

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.scaling.decide import ScalingDecision
    from include.headroom.scaling.settings import ScalingConfig

ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ASG_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")  # printable ASCII; ':' is refused separately (ARN separator)
APP_AS_NAMESPACES = {"ecs", "dynamodb", "lambda"}
APP_AS_RESOURCE_ID = {
    "ecs": re.compile(r"^service/[A-Za-z0-9_-]{1,255}/[A-Za-z0-9_-]{1,255}$"),
    "dynamodb": re.compile(r"^table/[A-Za-z0-9_.-]{3,255}(/index/[A-Za-z0-9_.-]{3,255})?$"),
    "lambda": re.compile(r"^function:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_$-]{1,128}$"),
}
APP_AS_DIMENSIONS = {
    "ecs": {"ecs:service:DesiredCount"},
    "dynamodb": {"dynamodb:table:ReadCapacityUnits", "dynamodb:table:WriteCapacityUnits",
                 "dynamodb:index:ReadCapacityUnits", "dynamodb:index:WriteCapacityUnits"},
    "lambda": {"lambda:function:ProvisionedConcurrency"},
}


def _need(params: Mapping[str, str], key: str, where: str) -> str:
    value = params.get(key)
    if not value:
        raise GuardRailError(f"{where}: target field {key!r} is missing")
    return str(value)


def validate_target(kind: str, params: Mapping[str, str], service: str = "?") -> None:
    """Check the names and ids of a scaling target before any API call.

    :raises GuardRailError: naming the service, the field and the offending value.
    """
    where = f"service {service!r} target {kind}"
    try:
        target_kind = TargetKind(kind)
    except ValueError:
        raise GuardRailError(f"{where}: unknown target kind {kind!r}") from None
    if target_kind in (TargetKind.KUBERNETES_DEPLOYMENT, TargetKind.KUBERNETES_STATEFULSET):
        namespace, name = _need(params, "namespace", where), _need(params, "name", where)
        if len(namespace) > 63 or not K8S_NAMESPACE.match(namespace):
            raise GuardRailError(f"{where}: namespace={namespace!r} is not a valid Kubernetes namespace (RFC 1123 label)")
        for key, value in (("name", name), ("hpa", params.get("hpa"))):
            if value is not None and (len(value) > 253 or not K8S_NAME.match(value)):
                raise GuardRailError(f"{where}: {key}={value!r} is not a valid Kubernetes object name (RFC 1123 subdomain)")
    elif target_kind is TargetKind.AWS_ECS_SERVICE:
        for key in ("cluster", "service"):
            value = _need(params, key, where)
            if not ECS_NAME.match(value):
                raise GuardRailError(f"{where}: {key}={value!r} is not a valid ECS name ([A-Za-z0-9_-], 1-255)")
    elif target_kind is TargetKind.AWS_AUTOSCALING_GROUP:
        name = _need(params, "name", where)
        if not ASG_NAME.match(name) or ":" in name:
            raise GuardRailError(f"{where}: name={name!r} is not a valid Auto Scaling group name")
    elif target_kind is TargetKind.AWS_APPLICATION_AUTOSCALING:
        namespace = _need(params, "service_namespace", where)
        if namespace not in APP_AS_NAMESPACES:
            raise GuardRailError(f"{where}: service_namespace={namespace!r} must be one of {sorted(APP_AS_NAMESPACES)}")
        resource_id, dimension = _need(params, "resource_id", where), _need(params, "scalable_dimension", where)
        if not APP_AS_RESOURCE_ID[namespace].match(resource_id):
            raise GuardRailError(f"{where}: resource_id={resource_id!r} is not a valid {namespace} resource id")
        if dimension not in APP_AS_DIMENSIONS[namespace]:
            raise GuardRailError(f"{where}: scalable_dimension={dimension!r} must be one of {sorted(APP_AS_DIMENSIONS[namespace])}")


def check_guard_rails(decision: ScalingDecision, min_replicas: int, max_replicas: int, max_step: int | None = None) -> None:
    """Refuse a decision outside the service's bounds or beyond the step limit."""
    if not min_replicas <= decision.desired_replicas <= max_replicas:
        raise GuardRailError(
            f"service {decision.service!r}: desired_replicas={decision.desired_replicas} is outside [{min_replicas}, {max_replicas}]"
        )
    step = max_step if max_step is not None else decision.max_step
    if step and abs(decision.desired_replicas - decision.current_replicas) > step:
        raise GuardRailError(
            f"service {decision.service!r}: a step from {decision.current_replicas} to {decision.desired_replicas} "
            f"exceeds the step limit of {step} replicas"
        )


def check_live_step(decision: ScalingDecision, observed: int) -> None:
    """Refuse when the target's observed replicas moved so far from the planned ones that the step limit would break."""
    if decision.max_step and abs(decision.desired_replicas - observed) > decision.max_step:
        raise GuardRailError(
            f"service {decision.service!r}: the target runs {observed} replicas now; moving to {decision.desired_replicas} "
            f"exceeds the step limit of {decision.max_step}"
        )


def interval_is_current(as_of: pd.Timestamp, now: pd.Timestamp, settings: ScalingConfig) -> bool:
    """Whether a run for ``as_of`` is for the current interval: not older than one schedule period plus the grace.

    A backfill, a catch-up or a re-run of an old interval is not current and must never touch production.
    """
    age = (now - as_of).total_seconds()
    return age <= settings.schedule_period_s + settings.current_interval_grace_s
