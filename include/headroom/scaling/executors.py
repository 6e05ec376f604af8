"""Scaling executors: read a target's state, apply a decision idempotently, verify, roll back. Dry-run is the default.

The executors take ready-made API clients (a ``kubernetes.client.ApiClient``, boto3 clients), so the
Airflow layer decides where credentials come from and tests point the real clients at local servers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Callable, Mapping

from include.headroom.audit import AuditRecord, Status
from include.headroom.catalog import TargetKind
from include.headroom.exceptions import ActionError, GuardRailError, InvalidArgumentError, RetryExhaustedError
from include.headroom.redact import redact
from include.headroom.resilience import RetryPolicy, describe, retry
from include.headroom.scaling.decide import Action, ScalingDecision
from include.headroom.scaling.safety import check_guard_rails, check_live_step, validate_target

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.scaling.settings import VerifySettings

log = logging.getLogger(__name__)

__all__ = [
    "ApplicationAutoScalingScaler",
    "AutoScalingGroupScaler",
    "DryRunExecutor",
    "EcsServiceScaler",
    "KubernetesScaler",
    "SCALERS",
    "Scaler",
    "TargetState",
    "Verdict",
    "apply_decision",
    "check_guard_rails",
    "judge",
    "roll_back",
]


@dataclass(frozen=True)
class TargetState:
    """What a target runs now: the replicas asked for, the ones ready (when known), and its version."""

    replicas: int
    ready: int | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "ready": self.ready, "version": self.version, **self.extra}


class Scaler(Protocol):
    """One target kind's API: read the state, set the replicas."""

    name: str

    def read(self, params: Mapping[str, str]) -> TargetState: ...

    def scale(self, params: Mapping[str, str], replicas: int) -> TargetState: ...


# -- retries ---------------------------------------------------------------------------------------


def _retry(call: Callable[[], Any], *, what: str, retryable: Callable[[Exception], bool], attempts: int, backoff_s: float) -> Any:
    """Run ``call``; retry the errors ``retryable`` accepts with exponential backoff, then fail with ActionError."""
    tried = 0

    def counted() -> Any:
        nonlocal tried
        tried += 1
        return call()

    try:
        return retry(
            counted,
            RetryPolicy(attempts=attempts, base_delay_s=backoff_s),
            what=what,
            retryable=lambda exc: not isinstance(exc, ActionError) and retryable(exc),
            on_retry=lambda n, exc, _delay: log.warning("%s: attempt %d failed (%s); retrying", what, n + 1, _describe(exc)),
        )
    except ActionError:
        raise
    except Exception as exc:  # translated: the API client's own error types (refused at once, or after every attempt)
        last = exc.__cause__ if isinstance(exc, RetryExhaustedError) else exc
        raise ActionError(f"{what} failed after {tried} attempt(s): {_describe(last)}") from last


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '')}".strip()
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return redact(f"{response['Error'].get('Code')}: {response['Error'].get('Message')}")
    return describe(exc)


# -- Kubernetes ------------------------------------------------------------------------------------


class KubernetesScaler:
    """Deployments and StatefulSets through their ``scale`` subresource; HPA floors through ``autoscaling/v2``.

    Writes are ``PUT`` with the ``resourceVersion`` just read, so a concurrent writer makes the API answer
    409 Conflict; the scaler then re-reads and retries (up to ``attempts``). 5xx answers are retried with
    backoff; anything else (403, 404, 422) fails at once.

    :param api_client: a ``kubernetes.client.ApiClient`` (``KubernetesHook.get_conn()``).
    :param workload: ``deployment`` or ``statefulset``.
    """

    def __init__(self, api_client: Any, workload: str = "deployment", attempts: int = 4, backoff_s: float = 0.2) -> None:
        if workload not in ("deployment", "statefulset"):
            raise InvalidArgumentError(f"workload={workload!r} must be 'deployment' or 'statefulset'")
        from kubernetes import client

        self.name = f"kubernetes_{workload}"
        self.workload = workload
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)
        self.attempts, self.backoff_s = attempts, backoff_s

    @staticmethod
    def _retryable(exc: Exception) -> bool:
        status = getattr(exc, "status", None)
        return status == 409 or (isinstance(status, int) and status >= 500) or status == 0 or isinstance(exc, (ConnectionError, OSError))

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        return _retry(call, what=what, retryable=self._retryable, attempts=self.attempts, backoff_s=self.backoff_s)

    def _read_scale(self, namespace: str, name: str) -> Any:
        fn = self.apps.read_namespaced_deployment_scale if self.workload == "deployment" else self.apps.read_namespaced_stateful_set_scale
        return fn(name, namespace)

    def read(self, params: Mapping[str, str]) -> TargetState:
        ns, name = params["namespace"], params["name"]
        if params.get("hpa"):
            return self._read_hpa(ns, params["hpa"])
        scale = self._call(f"read {self.workload}/{name} scale in {ns}", lambda: self._read_scale(ns, name))
        return TargetState(int(scale.spec.replicas or 0), scale.status.replicas, scale.metadata.resource_version)

    def _read_hpa(self, ns: str, hpa: str) -> TargetState:
        obj = self._call(f"read hpa/{hpa} in {ns}", lambda: self.autoscaling.read_namespaced_horizontal_pod_autoscaler(hpa, ns))
        return TargetState(
            int(obj.spec.min_replicas or 1),
            obj.status.current_replicas if obj.status else None,
            obj.metadata.resource_version,
            {"max_replicas": obj.spec.max_replicas, "hpa": hpa},
        )

    def scale(self, params: Mapping[str, str], replicas: int) -> TargetState:
        """Set the replicas (or, for a target with ``hpa``, the HPA's minReplicas) to ``replicas``."""
        ns, name = params["namespace"], params["name"]
        if params.get("hpa"):
            return self._set_hpa_min(ns, params["hpa"], replicas)
        from kubernetes import client

        replace = (
            self.apps.replace_namespaced_deployment_scale
            if self.workload == "deployment"
            else self.apps.replace_namespaced_stateful_set_scale
        )

        def attempt() -> TargetState:
            current = self._read_scale(ns, name)
            if current.spec.replicas == replicas:
                return TargetState(replicas, current.status.replicas, current.metadata.resource_version)
            body = client.V1Scale(
                api_version="autoscaling/v1",
                kind="Scale",
                metadata=client.V1ObjectMeta(name=name, namespace=ns, resource_version=current.metadata.resource_version),
                spec=client.V1ScaleSpec(replicas=replicas),
            )
            done = replace(name, ns, body)
            return TargetState(int(done.spec.replicas), done.status.replicas if done.status else None, done.metadata.resource_version)

        return self._call(f"scale {self.workload}/{name} in {ns} to {replicas}", attempt)

    def _set_hpa_min(self, ns: str, hpa: str, replicas: int) -> TargetState:
        def attempt() -> TargetState:
            obj = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(hpa, ns)
            if replicas > obj.spec.max_replicas:
                raise GuardRailError(f"hpa {ns}/{hpa}: minReplicas={replicas} would exceed its maxReplicas={obj.spec.max_replicas}")
            if obj.spec.min_replicas == replicas:
                return TargetState(replicas, None, obj.metadata.resource_version, {"max_replicas": obj.spec.max_replicas, "hpa": hpa})
            obj.spec.min_replicas = replicas  # the read object carries its resourceVersion: a concurrent change gives 409
            done = self.autoscaling.replace_namespaced_horizontal_pod_autoscaler(hpa, ns, obj)
            return TargetState(
                int(done.spec.min_replicas), None, done.metadata.resource_version, {"max_replicas": done.spec.max_replicas, "hpa": hpa}
            )

        return self._call(f"set hpa/{hpa} minReplicas in {ns} to {replicas}", attempt)


# -- AWS -------------------------------------------------------------------------------------------

THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled"}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}


def _aws_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


class _AwsScaler:
    name = "aws"

    def __init__(self, client: Any, attempts: int = 4, backoff_s: float = 0.2) -> None:
        self.client, self.attempts, self.backoff_s = client, attempts, backoff_s

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        def guarded() -> Any:
            try:
                return call()
            except Exception as exc:
                if _aws_code(exc) in ACCESS_DENIED:
                    raise ActionError(
                        f"{what}: access denied ({_describe(exc)}); the IAM policy in deploy/aws/ lists what headroom needs"
                    ) from exc
                raise

        return _retry(guarded, what=what, retryable=lambda e: _aws_code(e) in THROTTLING, attempts=self.attempts, backoff_s=self.backoff_s)


class EcsServiceScaler(_AwsScaler):
    """ECS ``UpdateService`` desired count. :param client: a boto3 ``ecs`` client."""

    name = "aws_ecs_service"

    def read(self, params: Mapping[str, str]) -> TargetState:
        out = self._call(
            f"describe ECS service {params['cluster']}/{params['service']}",
            lambda: self.client.describe_services(cluster=params["cluster"], services=[params["service"]]),
        )
        if not out.get("services"):
            raise ActionError(f"ECS service {params['service']!r} not found in cluster {params['cluster']!r}: {out.get('failures')}")
        svc = out["services"][0]
        return TargetState(int(svc["desiredCount"]), int(svc.get("runningCount", 0)))

    def scale(self, params: Mapping[str, str], replicas: int) -> TargetState:
        out = self._call(
            f"update ECS service {params['cluster']}/{params['service']} desiredCount={replicas}",
            lambda: self.client.update_service(cluster=params["cluster"], service=params["service"], desiredCount=replicas),
        )
        return TargetState(int(out["service"]["desiredCount"]), int(out["service"].get("runningCount", 0)))


class AutoScalingGroupScaler(_AwsScaler):
    """EC2 Auto Scaling ``SetDesiredCapacity`` and scheduled actions. :param client: a boto3 ``autoscaling`` client."""

    name = "aws_autoscaling_group"

    def read(self, params: Mapping[str, str]) -> TargetState:
        out = self._call(
            f"describe Auto Scaling group {params['name']}",
            lambda: self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[params["name"]]),
        )
        if not out.get("AutoScalingGroups"):
            raise ActionError(f"Auto Scaling group {params['name']!r} not found")
        group = out["AutoScalingGroups"][0]
        return TargetState(
            int(group["DesiredCapacity"]),
            len(group.get("Instances", [])),
            extra={"min_size": group["MinSize"], "max_size": group["MaxSize"]},
        )

    def scale(self, params: Mapping[str, str], replicas: int) -> TargetState:
        self._call(
            f"set desired capacity of {params['name']} to {replicas}",
            lambda: self.client.set_desired_capacity(AutoScalingGroupName=params["name"], DesiredCapacity=replicas, HonorCooldown=False),
        )
        return self.read(params)

    def schedule_floor(self, params: Mapping[str, str], action_name: str, start: pd.Timestamp, min_size: int) -> None:
        """A scheduled action that raises the group's MinSize (and DesiredCapacity) to ``min_size`` at ``start``."""
        self._call(
            f"put scheduled action {action_name} on {params['name']}",
            lambda: self.client.put_scheduled_update_group_action(
                AutoScalingGroupName=params["name"],
                ScheduledActionName=action_name,
                StartTime=start,
                MinSize=min_size,
                DesiredCapacity=min_size,
            ),
        )


class ApplicationAutoScalingScaler(_AwsScaler):
    """Application Auto Scaling scalable targets (ECS services, DynamoDB, Lambda provisioned concurrency).

    The replicas are the scalable target's MinCapacity: a floor the target's own scaling policies work above.

    :param client: a boto3 ``application-autoscaling`` client.
    """

    name = "aws_application_autoscaling"

    @staticmethod
    def _ids(params: Mapping[str, str]) -> dict[str, str]:
        return {
            "ServiceNamespace": params["service_namespace"],
            "ResourceId": params["resource_id"],
            "ScalableDimension": params["scalable_dimension"],
        }

    def read(self, params: Mapping[str, str]) -> TargetState:
        ids = self._ids(params)
        out = self._call(
            f"describe scalable target {params['resource_id']}",
            lambda: self.client.describe_scalable_targets(
                ServiceNamespace=ids["ServiceNamespace"], ResourceIds=[ids["ResourceId"]], ScalableDimension=ids["ScalableDimension"]
            ),
        )
        if not out.get("ScalableTargets"):
            raise ActionError(f"scalable target {params['resource_id']!r} ({params['scalable_dimension']}) is not registered")
        target = out["ScalableTargets"][0]
        return TargetState(int(target["MinCapacity"]), extra={"max_capacity": int(target["MaxCapacity"])})

    def register(self, params: Mapping[str, str], min_capacity: int, max_capacity: int) -> None:
        self._call(
            f"register scalable target {params['resource_id']}",
            lambda: self.client.register_scalable_target(**self._ids(params), MinCapacity=min_capacity, MaxCapacity=max_capacity),
        )

    def scale(self, params: Mapping[str, str], replicas: int) -> TargetState:
        current = self.read(params)
        self.register(params, replicas, max(current.extra["max_capacity"], replicas))
        return self.read(params)

    def schedule_floor(self, params: Mapping[str, str], action_name: str, start: pd.Timestamp, min_capacity: int) -> None:
        """A one-time scheduled action (``at(...)``) that sets MinCapacity to ``min_capacity`` at ``start``."""
        from include.headroom.timeutil import utc

        when = f"at({utc(start):%Y-%m-%dT%H:%M:%S})"
        self._call(
            f"put scheduled action {action_name} on {params['resource_id']}",
            lambda: self.client.put_scheduled_action(
                **self._ids(params), ScheduledActionName=action_name, Schedule=when, ScalableTargetAction={"MinCapacity": min_capacity}
            ),
        )


# -- applying --------------------------------------------------------------------------------------


def _record(
    decision: ScalingDecision, status: Status, executor: str, reason: str, before: Any = None, after: Any = None, **detail: Any
) -> AuditRecord:
    return AuditRecord(
        kind="scaling",
        service=decision.service,
        action=decision.action,
        status=status,
        dry_run=status is Status.DRY_RUN,
        executor=executor,
        reason=reason,
        before=before,
        after=after,
        detail={
            "decision_id": decision.decision_id,
            "as_of": decision.as_of,
            "rule": decision.rule,
            "impact": decision.impact,
            "cost_change_month": decision.cost_change_month,
            "requires_approval": decision.requires_approval,
            "recommendation": decision.recommendation,
            "seed": decision.seed,
            "target_kind": decision.target_kind,
            "target": decision.target,
            "inputs": decision.inputs,
            **detail,
        },
    )


@dataclass
class DryRunExecutor:
    """Records the action it would take against the decision's target; never calls a cluster or cloud API."""

    name: str = "dry_run"
    why: str = "dry-run: the service is not enabled in the catalog"

    def apply(self, decision: ScalingDecision) -> AuditRecord:
        if decision.action == Action.SCALE.value:
            what = f"would scale {decision.target_kind} {decision.target} from {decision.current_replicas} to {decision.desired_replicas}"
        elif decision.action == Action.ALARM.value:
            what = "would raise an alarm to the owner instead of scaling"
        else:
            what = "nothing to do"
        return _record(
            decision,
            Status.DRY_RUN,
            self.name,
            f"{decision.rule}: {decision.reason}; {what} ({self.why})",
            {"replicas": decision.current_replicas},
            {"replicas": decision.desired_replicas},
        )


def apply_decision(decision: ScalingDecision, scaler: Scaler) -> AuditRecord:
    """Apply a scale decision through ``scaler``: validate, read the target, no-op when it already runs the desired
    replicas, refuse a step beyond the limit from what it runs now, else set the replicas.

    :raises GuardRailError: for an invalid target or a step beyond the limit (nothing was called to change anything).
    :raises ActionError: when the API refused or kept failing after retries.
    """
    if decision.action != Action.SCALE.value:
        raise ActionError(f"service {decision.service!r}: action={decision.action!r} is not a scale action")
    validate_target(decision.target_kind, decision.target, decision.service)
    check_guard_rails(decision, decision.min_replicas, decision.max_replicas)
    before = scaler.read(decision.target)
    if before.replicas == decision.desired_replicas:
        return _record(
            decision,
            Status.SKIPPED,
            scaler.name,
            f"already at {decision.desired_replicas} replicas: nothing to apply",
            before.to_dict(),
            before.to_dict(),
            idempotent=True,
        )
    check_live_step(decision, before.replicas)
    after = scaler.scale(decision.target, decision.desired_replicas)
    return _record(
        decision,
        Status.APPLIED,
        scaler.name,
        f"{decision.rule}: {decision.reason}; scaled from {before.replicas} to {after.replicas}",
        before.to_dict(),
        after.to_dict(),
    )


def roll_back(decision: ScalingDecision, scaler: Scaler, previous: int, why: str) -> AuditRecord:
    """Put the target back to ``previous`` replicas (the recorded before-state) and record why."""
    now = scaler.read(decision.target)
    restored = scaler.scale(decision.target, previous) if now.replicas != previous else now
    return _record(
        decision, Status.ROLLED_BACK, scaler.name, f"rolled back to {previous} replicas: {why}", now.to_dict(), restored.to_dict()
    )


class Verdict(str, Enum):
    """Outcome of the follow-up check after an action."""

    OK = "ok"
    WAIT = "wait"
    NOT_CONVERGED = "not_converged"
    WORSE = "worse"


def judge(
    desired: int,
    state: TargetState,
    waited_s: float,
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    cpu_target: float,
    alarm_error_rate: float,
    verify: VerifySettings,
) -> tuple[Verdict, str]:
    """Compare the symptom before and after an action.

    :returns: (verdict, why): ``wait`` while the target converges, ``not_converged`` after the timeout,
        ``worse`` when CPU rose more than the allowed points above max(before, target) or the error
        rate crossed the alarm level, else ``ok``.
    """
    ready = state.ready if state.ready is not None else state.replicas
    if state.replicas != desired or ready != desired:
        if waited_s >= verify.converge_timeout_s:
            return Verdict.NOT_CONVERGED, f"target runs {ready} of {desired} replicas after {waited_s:.0f} s"
        return Verdict.WAIT, f"target runs {ready} of {desired} replicas"
    cpu_before, cpu_after = before.get("cpu_utilization"), after.get("cpu_utilization")
    if cpu_before is not None and cpu_after is not None and cpu_after > max(cpu_before, cpu_target) + verify.worse_if_cpu_rises_by:
        return Verdict.WORSE, f"CPU went from {cpu_before:.1f}% to {cpu_after:.1f}% after the action"
    err_before, err_after = before.get("error_rate") or 0.0, after.get("error_rate")
    if err_after is not None and err_after > alarm_error_rate >= err_before:
        return Verdict.WORSE, f"error rate went from {err_before:.1%} to {err_after:.1%} after the action"
    return Verdict.OK, f"converged at {desired} replicas; symptom not worse"


SCALERS: dict[str, Callable[[Mapping[str, Any]], Scaler]] = {
    TargetKind.KUBERNETES_DEPLOYMENT.value: lambda clients: KubernetesScaler(clients["kubernetes"], "deployment"),
    TargetKind.KUBERNETES_STATEFULSET.value: lambda clients: KubernetesScaler(clients["kubernetes"], "statefulset"),
    TargetKind.AWS_ECS_SERVICE.value: lambda clients: EcsServiceScaler(clients["ecs"]),
    TargetKind.AWS_AUTOSCALING_GROUP.value: lambda clients: AutoScalingGroupScaler(clients["autoscaling"]),
    TargetKind.AWS_APPLICATION_AUTOSCALING.value: lambda clients: ApplicationAutoScalingScaler(clients["application-autoscaling"]),
}
