"""Alert evaluation and the notifier: the same channels serve the ``alerts`` DAG, task failure callbacks,
the scaling approval request and the daily workflow's deadline."""

from __future__ import annotations

import logging
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from include.headroom.alerts.service import AlertRunResult

log = logging.getLogger("headroom.alerts")


def _now() -> datetime:
    return datetime.now(UTC)


def evaluate_and_notify(as_of: datetime, now: datetime | None = None) -> AlertRunResult:
    """Every store-backed condition at ``as_of`` through the incident lifecycle and the routed channels."""
    from headroom_provider.defaults import config, store
    from headroom_provider.notifications.dispatch import Dispatcher, alert_settings, mask

    from include.headroom.alerts import EVALUATED_KINDS, evaluate_conditions, run_alerts

    settings = alert_settings()
    dispatcher = Dispatcher(settings)
    mask(dispatcher.channels)
    s = store()
    conditions = evaluate_conditions(s, config(), settings, as_of)
    return run_alerts(s, settings, conditions, as_of, now or _now(), dispatcher, EVALUATED_KINDS)


def raise_event(kind: str, service: str, subject: str, summary: str, link: str = "", resolve: bool = False,
                now: datetime | None = None, **detail: Any) -> AlertRunResult:
    """Open (or, with ``resolve``, resolve) the incident of one event through the same lifecycle and channels."""
    from headroom_provider.defaults import config, store
    from headroom_provider.notifications.dispatch import Dispatcher, alert_settings, mask

    from include.headroom.alerts import Kind, event_condition, run_alerts

    settings = alert_settings()
    dispatcher = Dispatcher(settings)
    mask(dispatcher.channels)
    svc = next((x for x in config().services if x.name == service), None)
    fields = {"tier": svc.tier.value, "owner": svc.owner} if svc else {}
    when = now or _now()
    conditions = [] if resolve else [event_condition(Kind(kind), service, subject, summary, settings, link=link, **fields, **detail)]
    return run_alerts(store(), settings, conditions, when, when, dispatcher, evaluated_kinds=[Kind(kind)] if resolve else [])


def push_metrics(as_of: datetime) -> dict[str, Any]:
    """headroom's gauges at ``as_of`` pushed to the Pushgateway of ``metrics.pushgateway_conn_id`` (skipped when unset)."""
    from headroom_provider.defaults import store
    from headroom_provider.notifications.dispatch import alert_settings

    from include.headroom.alerts.metrics import collect_samples, registry_of

    settings = alert_settings()
    samples = collect_samples(store(), as_of)
    conn_id = settings.metrics.pushgateway_conn_id
    if not conn_id:
        log.info("metrics.pushgateway_conn_id is not set: %d samples not pushed", len(samples))
        return {"samples": len(samples), "pushed_to": None}
    from airflow.sdk import BaseHook
    from prometheus_client import push_to_gateway

    conn = BaseHook.get_connection(conn_id)
    host = conn.host or ""
    url = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    if conn.port:
        url = f"{url.rstrip('/')}:{conn.port}"
    push_to_gateway(url, job=settings.metrics.job, registry=registry_of(samples), timeout=10)
    log.info("Pushed %d samples to %s (job %s)", len(samples), url, settings.metrics.job)
    return {"samples": len(samples), "pushed_to": url}


def _is_backfill(context: Any) -> bool:
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None) or (dag_run.get("run_type") if isinstance(dag_run, dict) else None) or ""
    return str(getattr(run_type, "value", run_type)).lower() == "backfill"


class HeadroomAlertNotifier(BaseNotifier):
    """Raises a headroom incident from a callback, through ``alerts.yaml``'s routes and channels.

    ``kind="run_failed"`` as a task ``on_failure_callback`` (a task that failed after its retries fails its DAG run):
    one incident per DAG run, whichever tasks fail. ``kind="approval_waiting"`` as a HITL operator's notifier:
    the notice links to the task's required-actions page. Callbacks of backfill runs never notify.

    :param kind: ``run_failed`` or ``approval_waiting``.
    """

    template_fields = ("kind",)

    def __init__(self, kind: str = "run_failed") -> None:
        super().__init__()
        self.kind = kind

    def notify(self, context: Any) -> None:
        if _is_backfill(context):
            log.info("Backfill run: %s is recorded in the run's log only, no alert", self.kind)
            return
        ti = context["ti"]
        if self.kind == "approval_waiting":
            decision = getattr(context.get("task"), "decision", None) or {}
            service = str(decision.get("service") or ti.dag_id)
            link = approval_link(context)
            raise_event("approval_waiting", service, f"{ti.task_id}[{ti.map_index}]@{ti.run_id}",
                        f"scaling decision for {service} waits for approval: {getattr(context.get('task'), 'subject', '')}", link=link)
            return
        from include.headroom.alerts.settings import Kind

        base = _base_url()
        link = f"{base}/dags/{ti.dag_id}/runs/{ti.run_id}/tasks/{ti.task_id}" if base else ""
        exc = context.get("exception")
        raise_event(Kind(self.kind).value, ti.dag_id, ti.run_id,
                    f"task {ti.task_id} of {ti.dag_id} failed after its retries ({type(exc).__name__ if exc else 'failed'}): "
                    f"run {ti.run_id}",
                    link=link)


def _base_url() -> str:
    from headroom_provider.notifications.dispatch import alert_settings

    return alert_settings(check_connections=False).airflow_base_url


def approval_link(context: Any) -> str:
    """The required-actions page of the waiting HITL task, at ``alerts.yaml``'s ``airflow_base_url``."""
    from airflow.providers.standard.operators.hitl import HITLOperator

    return HITLOperator.generate_link_to_ui_from_context(context=context, base_url=_base_url())


def resolve_approval(context: Any) -> None:
    """The approval was answered (or expired): its incident resolves."""
    if _is_backfill(context):
        return
    ti = context["ti"]
    decision = getattr(context.get("task"), "decision", None) or {}
    service = str(decision.get("service") or ti.dag_id)
    raise_event("approval_waiting", service, f"{ti.task_id}[{ti.map_index}]@{ti.run_id}", "", resolve=True)


async def deadline_missed(context: dict | None = None, **kwargs: Any) -> None:
    """Airflow's deadline callback (runs in the triggerer): the DAG run had not finished by its deadline."""
    import asyncio

    dag_run = (context or {}).get("dag_run") or {}
    dag_id = str(kwargs.get("dag_id") or dag_run.get("dag_id") or "capacity_forecast")
    run_id = str(dag_run.get("run_id") or (context or {}).get("run_id") or "unknown run")
    summary = f"{dag_id} run {run_id} had not finished {kwargs.get('deadline', 'by its deadline')}"
    await asyncio.to_thread(raise_event, "deadline_missed", dag_id, run_id, summary,
                            link=f"{_base_url()}/dags/{dag_id}/runs/{run_id}")
