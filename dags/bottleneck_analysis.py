"""
### bottleneck_analysis

Hourly, and whenever validated metrics land (**headroom_metrics**). For each
service (mapped in batches):

- the tier's SLOs: latency percentile and availability over the window, the
  error budget over a rolling 30 days, multi-window burn-rate alerts (page at
  14.4x over 1 h confirmed by 5 min or 6x over 6 h confirmed by 30 min; ticket
  at 1x over 3 days confirmed by 6 h) and when the budget runs out at the
  current burn; the USE figures (utilization, saturation, errors) per resource
  against the performance budgets;
- bottleneck episodes: each signal against its own seasonal baseline, rules per
  type (cpu_bound, cache_bound, database_bound, memory_leak,
  dependency_failure, and io/network/memory/concurrency through the resource
  mapping), a causal ranking of root causes with evidence (onset, lag,
  lagged correlation, prior weight) and the remedy the action DAGs understand;
- predicted bottlenecks from the latest forecasts, raised above probability 0.7.

A readable summary per service is written to the task log.

Params: `window_hours` analyses that many hours up to the interval end instead
of the data interval (use it to review a longer period). Runs triggered by new
metrics, which have no data interval, analyse the last hour.

Emits **headroom_findings**, which triggers the action DAGs.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from headroom_provider.assets import FINDINGS, METRICS_VALIDATED, SLO_STATUS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("0 * * * *", timezone="UTC"), assets=[METRICS_VALIDATED]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "analyse"],
    doc_md=__doc__,
    params={
        "window_hours": Param(None, type=["null", "number"], minimum=1, description="Analyse this many hours up to the interval end"),
        "batch_size": Param(4, type="integer", minimum=1, description="Services per mapped task"),
    },
)
def bottleneck_analysis():
    @task
    def list_service_batches(**context) -> list[list[str]]:
        from headroom_provider.defaults import service_batches

        return service_batches(int(context["params"]["batch_size"]))

    @task(map_index_template="{{ task.op_kwargs['services'][0] }}+")
    def analyse_services(services: list[str], **context) -> list[dict]:
        from datetime import timedelta

        from headroom_provider.defaults import config, json_safe, run_window, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.steps.analyse import run_analysis

        start, end = run_window(context)
        hours = context["params"].get("window_hours")
        if hours:
            start = end - timedelta(hours=float(hours))
        elif end - start < timedelta(hours=1):  # triggered by new metrics: no (or a short) data interval
            start = end - timedelta(hours=1)
        skip_unless_fresh("analysis", end, services)  # no fresh, valid service in the batch: the task is skipped
        results = run_analysis(store(), config(), services, start, end).to_xcom()
        print(f"Bottleneck analysis of {len(services)} services over [{start.isoformat()}, {end.isoformat()})")
        for r in results:
            budget = r.get("budget_remaining")
            budget_text = f"{budget:.0%}" if isinstance(budget, float) and budget == budget else "-"
            print(f"  {r['service']}: SLO {r['status']}, alert {r.get('alert', '-')}, error budget left {budget_text}"
                  + (f" ({r['reason']})" if r["reason"] else ""))
            for f in r["findings"]:
                print(f"    {f['summary']}")
        return json_safe(results)

    @task(multiple_outputs=True, outlets=[FINDINGS, SLO_STATUS])
    def publish(results: list[list[dict]], **context) -> dict:
        from headroom_provider.defaults import run_window

        rows = [r for batch in results for r in batch]
        _, end = run_window(context)
        context["outlet_events"][FINDINGS].extra = {"window_end": end.isoformat()}
        summary = {"services": len(rows), "findings": sum(len(r["findings"]) for r in rows),
                   "breaches": sorted(r["service"] for r in rows if r["status"] == "breach"),
                   "pages": sorted(r["service"] for r in rows if r.get("alert") == "page")}
        print(f"{summary['findings']} findings on {summary['services']} services; SLO breaches: {summary['breaches'] or 'none'}; "
              f"paging burn alerts: {summary['pages'] or 'none'}")
        return summary

    publish(analyse_services.expand(services=list_service_batches()))


bottleneck_analysis()
