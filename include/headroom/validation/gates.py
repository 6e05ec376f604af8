"""Gates in front of every decision: per service, the reason to refuse acting (failed validation, stale data), audited."""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.store import queries
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.store import Store

ALL_SERVICES = "*"  # a validation result that covers every service (an empty batch, a batch without a service column)
GATE_KIND = "gate"


class Step(str, Enum):
    """The decisions a gate stands in front of."""

    FORECAST = "forecast"
    ANALYSIS = "analysis"
    SCALING = "scaling"
    WARMING = "warming"


def latest_validations(store: Store, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per service (and ``*``), the newest validation result of a batch whose interval ended by ``as_of``."""
    return queries.latest_validations(store, as_of)


def _newest_points(store: Store, names: Sequence[str], now: pd.Timestamp, max_age: Any) -> dict[str, Any]:
    """Each named service's newest validated point at or before ``now``.

    Only the services asked for, and first only the last ``max_age`` (the files of older days are
    skipped by their statistics): on a large fleet this reads a sliver of the table. Services with
    no point that recent (stale ones) are looked up over the whole history.
    """
    if not names:
        return {}
    recent = queries.newest_points(store, names, now, since=now - max_age)
    found = {r.service: utc(r.newest) for r in recent.itertuples()}
    missing = [n for n in names if n not in found]
    if missing:
        older = queries.newest_points(store, missing, now)
        found.update({r.service: utc(r.newest) for r in older.itertuples()})
    return found


def service_freshness(
    store: Store, config: HeadroomConfig, as_of: pd.Timestamp, names: Sequence[str] | None = None
) -> dict[str, str | None]:
    """Per catalog service (or ``names``), ``None`` when it may be acted on at ``as_of``, else why not.

    A service is refused when the newest validation covering it failed, or when its newest
    validated point is older than its tier's ``max_age_s``. One service's bad batch never
    blocks another's decisions.
    """
    import pandas as pd

    now = as_of
    rules = config.pipeline.validation
    services = [config.service(n) for n in names] if names is not None else list(config.services)
    newest_by = _newest_points(
        store,
        [s.name for s in services],
        now,
        max(pd.Timedelta(seconds=rules.max_age_s.for_tier(s.tier)) for s in services) if services else pd.Timedelta(0),
    )
    latest = latest_validations(store, now)
    by_service = {r.service: r for r in latest.itertuples()}
    everyone = by_service.get(ALL_SERVICES)
    out: dict[str, str | None] = {}
    for svc in services:
        result = by_service.get(svc.name)
        # A batch-wide result counts for a service only when it is newer than the service's own.
        if everyone is not None and (result is None or utc(everyone.interval_end) > utc(result.interval_end)):
            result = everyone
        seen = newest_by.get(svc.name)
        max_age = pd.Timedelta(seconds=rules.max_age_s.for_tier(svc.tier))
        if result is not None and not result.success:
            why = result.batch_failure or f"{result.rows_quarantined} of {result.rows_in} rows quarantined ({result.failure_ratio:.1%})"
            out[svc.name] = f"latest validation failed (batch {result.batch_id}): {why}"
        elif seen is None:
            out[svc.name] = "no validated data"
        elif seen < now - max_age:
            out[svc.name] = f"stale: newest validated point {seen.isoformat()} is older than {max_age} at {now.isoformat()}"
        else:
            out[svc.name] = None
    return out


def _run_identity() -> tuple[str, str, str]:
    """The orchestrator's (dag, run, task) identity when a task runs this code (Airflow exports it), else empty."""
    env = os.environ
    return env.get("AIRFLOW_CTX_DAG_ID", ""), env.get("AIRFLOW_CTX_DAG_RUN_ID", ""), env.get("AIRFLOW_CTX_TASK_ID", "")


def gate_services(
    store: Store,
    config: HeadroomConfig,
    as_of: pd.Timestamp,
    step: Step | str,
    names: Sequence[str] | None = None,
) -> dict[str, str | None]:
    """:func:`service_freshness` for ``step``, with every refused service recorded in the audit trail (kind ``gate``).

    Records are keyed by run (or, outside a task run, by ``as_of``) so re-running a step
    replaces its records instead of adding copies.

    :returns: service -> ``None`` (act) or the reason the step skips it.
    """
    from include.headroom.audit import AuditRecord, Status, record

    now = as_of
    step = Step(step)
    reasons = service_freshness(store, config, now, names)
    dag_id, run_id, task_id = _run_identity()
    records = [
        AuditRecord(
            kind=GATE_KIND,
            service=service,
            action=step.value,
            status=Status.SKIPPED,
            dry_run=True,
            executor="gate",
            reason=reason,
            detail={"step": step.value, "as_of": now.isoformat()},
            dag_id=dag_id,
            run_id=run_id or f"as_of {now.isoformat()}",
            task_id=task_id,
        )
        for service, reason in reasons.items()
        if reason
    ]
    record(store, *records)
    return reasons


def fresh_share(reasons: dict[str, str | None]) -> float:
    """The share of services a gate lets through."""
    return sum(1 for r in reasons.values() if r is None) / len(reasons) if reasons else 0.0
