"""Writing audit records from inside an operator, stamped with the task's identity."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.headroom.audit import AuditRecord


def audit(context: Any, *records: AuditRecord) -> list[str]:
    from headroom_provider.defaults import store
    from include.headroom.audit import record

    ti = context["ti"]
    suffix = f"[{ti.map_index}]" if getattr(ti, "map_index", -1) not in (-1, None) else ""
    stamped = [replace(r, dag_id=ti.dag_id, run_id=ti.run_id, task_id=f"{ti.task_id}{suffix}") for r in records]
    return record(store(), *stamped)
