"""
### alerts

Tells people. Runs whenever the analysis, the forecasts or the scaling audit
are updated (**headroom_findings**, **headroom_capacity**, **headroom_audit**)
and turns what holds into incidents with a lifecycle:

- multi-window SLO burn-rate alerts (page or ticket), scaling's alarm instead of
  scaling (error rate above 5 %, target out of bounds), predicted bottlenecks
  above the probability threshold with their lead time, and series saturating
  within the configured days;
- each incident (service, kind, episode) is opened once, updated when its
  severity changes and resolved when the condition clears; `alerts.yaml` routes
  it by severity, tier and owner to Slack, email, PagerDuty, SNS or the log,
  with quiet hours and a per-incident rate limit;
- state lives in the store's `alerts` table, so a retry or a re-run sends
  nothing twice; a run for a past interval (backfill, catch-up) sends nothing.

Then headroom's outputs are pushed as Prometheus gauges to the Pushgateway of
`metrics.pushgateway_conn_id`. A channel that is down is retried, then
recorded as failed; the run still succeeds.

Failed task runs, a scaling approval waiting and capacity_forecast's missed
deadline reach the same channels through callbacks.

Emits **headroom_alerts**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import ACTIONS, ALERTS, FINDINGS, FORECASTS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=(FINDINGS | FORECASTS | ACTIONS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # two evaluations must not decide the same incident at once
    default_args=DEFAULT_ARGS,
    tags=["headroom", "act"],
    doc_md=__doc__,
)
def alerts():
    @task(multiple_outputs=False, outlets=[ALERTS])
    def evaluate_alerts(**context) -> dict:
        from headroom_provider.defaults import as_of
        from headroom_provider.notifications.alerts import evaluate_and_notify

        at = as_of(context)
        result = evaluate_and_notify(at)
        if result.past_interval:
            print(f"as-of {at.isoformat()} is a past interval: nothing is recorded or sent")
        for n in result.notices:
            states = ", ".join(f"{r.channel} {r.state}" for r in result.deliveries[n.incident_key])
            print(f"  {n.title} -> {states}")
        for key, why in result.held.items():
            print(f"  held {key}: {why}")
        return result.summary()

    @task(multiple_outputs=False)
    def push_metrics(**context) -> dict:
        from headroom_provider.defaults import as_of
        from headroom_provider.notifications.alerts import push_metrics as push

        return push(as_of(context))

    evaluate_alerts() >> push_metrics()


alerts()
