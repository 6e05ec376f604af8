"""Scaling operators: apply one decision to its target, ask a human to approve it, and verify it (rolling back if worse)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import BaseOperator, BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.headroom.audit import AuditRecord
    from include.headroom.scaling.decide import ScalingDecision

SCALING_POOL = "headroom_scaling"  # one slot: two applies never run at once, so a target is never scaled twice concurrently


def _decision(raw: Any) -> ScalingDecision:
    from include.headroom.scaling.decide import ScalingDecision

    if not isinstance(raw, dict) or "service" not in raw:
        raise ValueError(f"decision={raw!r} must be a scaling decision dict with a 'service'")
    return ScalingDecision.from_dict(raw)


def _plain(decision: ScalingDecision, status: Any, reason: str, **detail: Any) -> AuditRecord:
    from include.headroom.audit import AuditRecord, Status

    return AuditRecord(
        kind="scaling",
        service=decision.service,
        action=decision.action,
        status=Status(status),
        dry_run=Status(status) is Status.DRY_RUN,
        executor=decision.target_kind,
        reason=reason,
        before={"replicas": decision.current_replicas},
        after={"replicas": decision.current_replicas},
        detail={
            "decision_id": decision.decision_id,
            "as_of": decision.as_of,
            "rule": decision.rule,
            "recommendation": decision.recommendation,
            "seed": decision.seed,
            "impact": decision.impact,
            "cost_change_month": decision.cost_change_month,
            **detail,
        },
    )


def is_live(decision: dict[str, Any]) -> bool:
    """Whether a routed decision may touch its target (see ``route_decisions``); skips never do."""
    return bool(decision.get("live")) and decision.get("action") != "skip"


def not_applied_record(raw: dict[str, Any]) -> AuditRecord:
    """The audit record of a decision that is not applied: a skip (refused input) or a dry-run with its reason."""
    from include.headroom.audit import Status
    from include.headroom.scaling.executors import DryRunExecutor

    decision = _decision(raw)
    if decision.action == "skip":
        return _plain(decision, Status.SKIPPED, f"{decision.rule}: {decision.reason}")
    return DryRunExecutor(why=raw.get("live_reason") or "dry-run").apply(decision)


def record_not_applied(context: Context, decisions: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Record every decision that will not be applied in one audit write, so a large fleet in dry-run costs one
    task instead of one mapped apply per service; returns the count per status."""
    from collections import Counter

    from headroom_provider.operators._audit import audit

    records = [not_applied_record(d) for d in decisions if not is_live(d)]
    if records:
        audit(context, *records)
    return dict(Counter(r.status.value for r in records))


class ScaleWorkloadOperator(BaseOperator):
    """Apply one scaling decision (a ``ScalingDecision`` dict routed by ``route_decisions``) to its target.

    A decision that is not ``live`` (dry-run service, past interval, no scale action) is recorded as
    dry-run with the reason and nothing is called. A live decision is validated (target names and ids,
    [min, max], step limit), compared with the target's current state (applying twice is a no-op) and
    applied through :class:`~headroom_provider.hooks.scaling.ScalingTargetHook`. A decision that needs an
    approval is applied only when the approval task (``approval_task_id``, same map index) answered
    "Approve"; unanswered -> expired, rejected -> skipped. Every outcome lands in the audit trail.

    :param decision: the decision dict.
    :param approval_task_id: the task holding the human approval for this decision, if any.
    """

    template_fields: Sequence[str] = ("decision",)
    ui_color = "#d8f3dc"

    def __init__(self, *, decision: dict[str, Any], approval_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision = decision
        self.approval_task_id = approval_task_id

    def _approval(self, context: Context) -> dict[str, Any] | None:
        ti = context["ti"]
        return ti.xcom_pull(task_ids=self.approval_task_id, map_indexes=ti.map_index)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from headroom_provider.hooks.scaling import ScalingTargetHook
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import Status
        from include.headroom.exceptions import ActionError, GuardRailError
        from include.headroom.scaling.executors import apply_decision

        decision = _decision(self.decision)
        out = {"service": decision.service, "decision": self.decision, "from": decision.current_replicas, "to": decision.desired_replicas}
        if not is_live(self.decision):
            record = not_applied_record(self.decision)
            audit(context, record)
            self.log.info("%s %s: %s", decision.service, record.status.value, record.reason)
            return {**out, "status": record.status.value}
        approver = None
        if self.approval_task_id:
            answer = self._approval(context)
            if not answer or not answer.get("approved"):
                expired = not answer or answer.get("outcome") == "expired"
                status = Status.EXPIRED if expired else Status.SKIPPED
                why = "approval expired unanswered: nothing applied" if expired else f"rejected by {answer.get('by')}: nothing applied"
                audit(context, _plain(decision, status, why, approval=answer))
                self.log.warning("%s: %s", decision.service, why)
                return {**out, "status": status.value}
            approver = answer.get("by")
        elif decision.requires_approval:
            why = "needs a human approval (high impact or cost above the threshold) and none was asked: nothing applied"
            audit(context, _plain(decision, Status.SKIPPED, why))
            return {**out, "status": Status.SKIPPED.value}
        try:
            scaler = ScalingTargetHook(decision.target_kind, decision.target).get_scaler()
            record = apply_decision(decision, scaler)
        except (ActionError, ValueError) as exc:
            audit(context, _plain(decision, Status.FAILED, str(exc)))
            if isinstance(exc, (GuardRailError, ValueError)):
                raise AirflowFailException(str(exc)) from exc  # a refused decision does not get better on retry
            raise
        if approver:
            from dataclasses import replace

            record = replace(record, detail={**record.detail, "approved_by": approver})
        audit(context, record)
        self.log.info("%s %s: %s", decision.service, record.status.value, record.reason)
        return {**out, "status": record.status.value, "before": record.before, "after": record.after}


class ApproveScalingOperator(ApprovalOperator):
    """Asks a human to approve one scaling decision (the standard provider's ``ApprovalOperator``).

    Unanswered after ``response_timeout`` (5 minutes in scaling.yaml) the request expires: the expiry
    is recorded in the audit trail and the decision is not applied. This operator never skips or fails
    its downstream task: it returns the outcome (``approved``, ``rejected`` or ``expired``), and the
    apply task acts on it.

    :param decision: the decision dict to approve.
    """

    template_fields: Sequence[str] = ("subject", "body", "decision")

    def __init__(self, *, decision: dict[str, Any], response_timeout: timedelta | None = None, **kwargs: Any) -> None:
        if response_timeout is None:
            from include.headroom.scaling.settings import policy_settings

            response_timeout = timedelta(seconds=policy_settings().expiry_s)
        kwargs.setdefault("subject", "headroom scaling approval")
        if "notifiers" not in kwargs:  # the request is told through alerts.yaml's channels, with its required-actions link
            from headroom_provider.notifications.alerts import HeadroomAlertNotifier

            kwargs["notifiers"] = [HeadroomAlertNotifier(kind="approval_waiting")]
        super().__init__(response_timeout=response_timeout, **kwargs)
        self.decision = decision

    def execute(self, context: Context) -> Any:
        d = _decision(self.decision)
        self.subject = f"Scale {d.service} from {d.current_replicas} to {d.desired_replicas}?"
        self.body = (
            f"**{d.rule}**: {d.reason}\n\nImpact **{d.impact}**, cost change **{d.cost_change_month:+.2f} USD/month**.\n\n"
            f"Target: `{d.target_kind}` {d.target}. Unanswered requests expire after "
            f"{int(self.response_timeout.total_seconds()) if self.response_timeout else 0} s and nothing is applied."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from headroom_provider.notifications.alerts import resolve_approval
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import Status

        resolve_approval(context)  # answered or expired: the "approval waiting" incident resolves
        decision = _decision(self.decision)
        if event.get("error_type") == "timeout":
            audit(
                context,
                _plain(decision, Status.EXPIRED, "approval request expired unanswered: nothing applied", approval={"outcome": "expired"}),
            )
            self.log.warning("Approval for %s expired", decision.service)
            return {"approved": False, "outcome": "expired", "by": None}
        answer = HITLOperator.execute_complete(self, context=context, event=event)  # no downstream skipping
        approved = answer["chosen_options"] == [self.APPROVE]
        by = answer.get("responded_by_user")
        by_name = by.get("name") if isinstance(by, dict) else by
        return {"approved": approved, "outcome": "approved" if approved else "rejected", "by": by_name}


class VerifyScalingSensor(BaseSensorOperator):
    """After an applied action: waits for the target to converge, compares the symptom before and after,
    and rolls the target back to its recorded previous replicas when it got worse or did not converge.

    :param outcome: the apply task's return value (only ``applied`` outcomes are verified).
    """

    template_fields: Sequence[str] = ("outcome",)

    def __init__(self, *, outcome: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome = outcome

    def poke(self, context: Context) -> bool:
        import pandas as pd

        from headroom_provider.defaults import config, store
        from headroom_provider.hooks.scaling import ScalingTargetHook
        from headroom_provider.operators._audit import audit
        from include.headroom.scaling.executors import Verdict, judge, roll_back
        from include.headroom.timeutil import utc

        if (self.outcome or {}).get("status") != "applied":
            return True
        decision = _decision(self.outcome["decision"])
        cfg = config()
        settings = cfg.scaling
        scaler = ScalingTargetHook(decision.target_kind, decision.target).get_scaler()
        state = scaler.read(decision.target)
        applied_at = utc(context["ti"].start_date) if context["ti"].start_date else utc(decision.as_of)
        waited = (pd.Timestamp.now(tz="UTC") - applied_at).total_seconds()
        metrics = store().read_metrics(services=[decision.service], start=applied_at, end=pd.Timestamp.now(tz="UTC"))
        after = {
            m: float(metrics.loc[metrics["metric"] == m, "value"].tail(3).mean())
            for m in ("cpu_utilization", "error_rate")
            if (metrics["metric"] == m).any()
        }
        profile = cfg.hpa_profile(cfg.service(decision.service))
        verdict, why = judge(
            decision.desired_replicas,
            state,
            waited,
            decision.inputs,
            after,
            profile.cpu_target,
            cfg.scaling.alarm_error_rate,
            settings.verify,
        )
        self.log.info("%s: %s (%s)", decision.service, verdict.value, why)
        if verdict is Verdict.WAIT or (verdict is Verdict.OK and not after and waited < settings.verify.converge_timeout_s):
            return False  # not converged yet, or no metric after the action to compare with
        if verdict in (Verdict.WORSE, Verdict.NOT_CONVERGED):
            audit(context, roll_back(decision, scaler, int(self.outcome["before"]["replicas"]), why))
        return True


class _ScaleTargetKindOperator(ScaleWorkloadOperator):
    """:class:`ScaleWorkloadOperator` restricted to the target kinds in ``target_kinds``."""

    target_kinds: frozenset[str] = frozenset()

    def execute(self, context: Context) -> dict[str, Any]:
        kind = (self.decision or {}).get("target_kind") if isinstance(self.decision, dict) else None
        if kind not in self.target_kinds:
            raise ValueError(f"{type(self).__name__} applies {sorted(self.target_kinds)} targets, not target_kind={kind!r}")
        return super().execute(context)


class ScaleKubernetesWorkloadOperator(_ScaleTargetKindOperator):
    """Scale a Kubernetes Deployment or StatefulSet (scale subresource), or raise its HPA's minReplicas."""

    target_kinds = frozenset({"kubernetes_deployment", "kubernetes_statefulset"})


class ScaleEcsServiceOperator(_ScaleTargetKindOperator):
    """Set an ECS service's desired count (``UpdateService``)."""

    target_kinds = frozenset({"aws_ecs_service"})


class ScaleAutoScalingGroupOperator(_ScaleTargetKindOperator):
    """Set an EC2 Auto Scaling group's desired capacity (``SetDesiredCapacity``)."""

    target_kinds = frozenset({"aws_autoscaling_group"})


class ScaleApplicationAutoScalingTargetOperator(_ScaleTargetKindOperator):
    """Raise or lower an Application Auto Scaling target's MinCapacity (ECS, DynamoDB, Lambda provisioned concurrency)."""

    target_kinds = frozenset({"aws_application_autoscaling"})


class ScheduleCapacityOperator(BaseOperator):
    """Put a service's planned capacity (the next hours' predictive and scheduled floors) on its AWS target as
    scheduled actions: one per hour whose floor changes. Kubernetes has no scheduled actions, so its floors are
    applied by ``scaling_actions`` when their time comes.

    Dry-run services only log the plan. Runs for a past interval put nothing.

    :param service: the catalog service.
    :param plan: rows of ``planned_capacity`` (``at``, ``replicas``), e.g. from a planning task.
    :param live: whether the run may change production (``route_decisions``' verdict for the service).
    """

    template_fields: Sequence[str] = ("service", "plan", "live")

    def __init__(self, *, service: str, plan: list[dict[str, Any]], live: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.plan, self.live = service, plan, live

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from headroom_provider.defaults import config
        from headroom_provider.hooks.scaling import ScalingTargetHook
        from include.headroom.scaling.safety import validate_target
        from include.headroom.timeutil import utc

        svc = config().service(self.service)
        kind, params = svc.target.kind.value, dict(svc.target.params)
        if kind not in ("aws_autoscaling_group", "aws_application_autoscaling"):
            raise ValueError(f"service {self.service!r}: target kind {kind!r} takes no scheduled actions")
        changes, last = [], None
        for row in sorted(self.plan, key=lambda r: r["at"]):
            replicas = int(row["replicas"])
            if not svc.min_replicas <= replicas <= svc.max_replicas:
                raise ValueError(
                    f"service {self.service!r}: planned replicas={replicas} at {row['at']} outside [{svc.min_replicas}, {svc.max_replicas}]"
                )
            if replicas != last:
                changes.append(
                    {
                        "at": utc(row["at"]).isoformat(),
                        "replicas": replicas,
                        "name": f"headroom-{self.service}-{utc(row['at']):%Y%m%dT%H%M}",
                    }
                )
                last = replicas
        if not (self.live and svc.target.enabled):
            self.log.info("Dry-run: would schedule %s", changes)
            return changes
        validate_target(kind, params, self.service)
        scaler = ScalingTargetHook(kind, params).get_scaler()
        for change in changes:
            scaler.schedule_floor(params, change["name"], change["at"], change["replicas"])
        self.log.info("Scheduled %d capacity changes on %s", len(changes), self.service)
        return changes
