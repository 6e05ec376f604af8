"""WarmCacheOperator: executes one cache warming plan (dry-run in the embedded default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class WarmCacheOperator(BaseOperator):
    """Warm a service's cache from a plan made by ``plan_all_warming``; a plan without a trigger is recorded as skipped.

    :param plan: the plan dict (service, trigger, keys, bytes, ttl_histogram, ...).
    :param dry_run: record what would be written instead of writing it.
    """

    template_fields: Sequence[str] = ("plan",)
    ui_color = "#fde2e4"

    def __init__(self, *, plan: dict[str, Any], dry_run: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from headroom_provider.operators._audit import audit
        from include.headroom.audit import AuditRecord, Status

        if not isinstance(self.plan, dict) or "service" not in self.plan:
            raise ValueError(f"plan={self.plan!r} must be a warming plan dict with a 'service'")
        if not self.dry_run:
            raise ValueError("only dry_run=True is available for cache warming in this release: no cache executor is configured")
        service = self.plan["service"]
        if not self.plan.get("trigger"):
            audit(context, AuditRecord(kind="cache", service=service, action="warm", status=Status.SKIPPED, dry_run=True,
                                       executor="dry_run", reason=self.plan.get("skip_reason") or "no trigger"))
            return {"service": service, "status": Status.SKIPPED.value}
        reason = (f"{self.plan['trigger']}: would warm {self.plan['keys']} keys ({self.plan['bytes'] / 1e6:.1f} MB), "
                  f"TTLs {self.plan['ttl_histogram']}")
        audit(context, AuditRecord(kind="cache", service=service, action="warm", status=Status.DRY_RUN, dry_run=True,
                                   executor="dry_run", reason=reason, before={"hit_rate": self.plan.get("hit_rate")},
                                   after={"keys": self.plan["keys"]}, detail=self.plan))
        self.log.info("%s: %s", service, reason)
        return {"service": service, "status": Status.DRY_RUN.value, "keys": self.plan["keys"]}
