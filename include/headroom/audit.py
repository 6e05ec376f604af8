"""The audit trail: every decision and action (applied, dry-run, skipped, failed) with who, why, before and after."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


class Status(str, Enum):
    APPLIED = "applied"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"
    FAILED = "failed"
    EXPIRED = "expired"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class AuditRecord:
    kind: str
    service: str
    action: str
    status: Status
    dry_run: bool
    executor: str
    reason: str
    before: Any = None
    after: Any = None
    detail: dict[str, Any] = field(default_factory=dict)
    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""

    @property
    def audit_id(self) -> str:
        """Stable per (run, task, kind, service, action): a task retry replaces its record instead of adding one."""
        key = json.dumps([self.dag_id, self.run_id, self.task_id, self.kind, self.service, self.action])
        return hashlib.sha256(key.encode()).hexdigest()[:20]


def record(store: Store, *records: AuditRecord, now: pd.Timestamp | None = None) -> list[str]:
    """Write ``records`` to the audit table; return their ids."""
    import pandas as pd

    if not records:
        return []
    created = now if now is not None else pd.Timestamp.now(tz="UTC")
    rows = pd.DataFrame([
        {
            "audit_id": r.audit_id, "created_at": created, "kind": r.kind, "service": r.service, "action": r.action,
            "status": Status(r.status).value, "dry_run": r.dry_run, "executor": r.executor,
            "before": json.dumps(r.before, default=str), "after": json.dumps(r.after, default=str), "reason": r.reason,
            "detail": json.dumps(r.detail, default=str), "dag_id": r.dag_id, "run_id": r.run_id, "task_id": r.task_id,
        }
        for r in records
    ])
    store.upsert("audit", rows)
    return list(rows["audit_id"])
