"""ScaleWorkloadOperator: applies one scaling decision through its target's executor (dry-run by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScaleWorkloadOperator(BaseOperator):
    """Apply a scaling decision (a ``ScalingDecision`` as a dict, usually mapped from a planning task).

    Guard rails are checked before anything is applied; every outcome, including
    skips and failures, is written to the audit trail.

    :param decision: the decision, e.g. from ``plan_all_scaling``.
    """

    template_fields: Sequence[str] = ("decision",)
    ui_color = "#d8f3dc"

    def __init__(self, *, decision: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision = decision

    def execute(self, context: Context) -> dict[str, Any]:
        from headroom_provider.defaults import config
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status
        from include.headroom.exceptions import ActionError
        from include.headroom.scaling.decide import ScalingDecision
        from include.headroom.scaling.executors import check_guard_rails, executor_for

        if not isinstance(self.decision, dict) or "service" not in self.decision:
            raise ValueError(f"decision={self.decision!r} must be a scaling decision dict with a 'service'")
        if self.decision.get("action") == "skip":
            rec = AuditRecord(kind="scaling", service=self.decision["service"], action="skip", status=Status.SKIPPED,
                              dry_run=True, executor="none", reason=self.decision.get("reason", ""), detail=self.decision)
            audit(context, rec)
            self.log.warning("Skipped %s: %s", self.decision["service"], self.decision.get("reason"))
            return {"service": self.decision["service"], "status": Status.SKIPPED.value}
        decision = ScalingDecision(**self.decision)
        service = config().service(decision.service)
        try:
            check_guard_rails(decision, service.min_replicas, service.max_replicas)
            record = executor_for(decision).apply(decision)
        except ActionError as exc:
            audit(context, AuditRecord(kind="scaling", service=decision.service, action=decision.action, status=Status.FAILED,
                                       dry_run=not decision.enabled, executor=decision.target_kind, reason=str(exc)))
            raise
        audit(context, record)
        self.log.info("%s %s: %s", decision.service, record.status.value, record.reason)
        return {"service": decision.service, "status": record.status.value, "action": decision.action,
                "from": decision.current_replicas, "to": decision.desired_replicas}
