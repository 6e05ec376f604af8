"""Scaling executors. The dry-run executor records what it would do and changes nothing; it is the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from include.headroom.audit import AuditRecord, Status
from include.headroom.exceptions import ActionError, GuardRailError
from include.headroom.scaling.decide import Action, ScalingDecision


class ScalingExecutor(Protocol):
    name: str

    def apply(self, decision: ScalingDecision) -> AuditRecord: ...


def check_guard_rails(decision: ScalingDecision, min_replicas: int, max_replicas: int) -> None:
    """Refuse a decision outside the service's bounds."""
    if not min_replicas <= decision.desired_replicas <= max_replicas:
        raise GuardRailError(
            f"service {decision.service!r}: desired_replicas={decision.desired_replicas} is outside [{min_replicas}, {max_replicas}]"
        )


@dataclass
class DryRunExecutor:
    """Records the action it would take against the decision's target; never calls a cluster or cloud API."""

    name: str = "dry_run"

    def apply(self, decision: ScalingDecision) -> AuditRecord:
        if decision.action == Action.SCALE.value:
            what = f"would scale {decision.target_kind} {decision.target} from {decision.current_replicas} to {decision.desired_replicas}"
        elif decision.action == Action.ALARM.value:
            what = "would raise an alarm to the owner instead of scaling"
        else:
            what = "nothing to do"
        return AuditRecord(
            kind="scaling", service=decision.service, action=decision.action, status=Status.DRY_RUN, dry_run=True,
            executor=self.name, reason=f"{decision.rule}: {decision.reason}; {what}",
            before={"replicas": decision.current_replicas}, after={"replicas": decision.desired_replicas},
            detail={"decision_id": decision.decision_id, "impact": decision.impact, "cost_change_month": decision.cost_change_month,
                    "requires_approval": decision.requires_approval, "inputs": decision.inputs},
        )


EXECUTORS: dict[str, type] = {"dry_run": DryRunExecutor}


def executor_for(decision: ScalingDecision) -> Any:
    """The executor for a decision's target: dry-run unless the service is enabled in the catalog."""
    if not decision.enabled:
        return DryRunExecutor()
    try:
        return EXECUTORS[decision.target_kind]()
    except KeyError:
        raise ActionError(
            f"service {decision.service!r} is enabled for {decision.target_kind!r}, which has no executor in this release; "
            "set enabled: false in the catalog to keep it in dry-run"
        ) from None
