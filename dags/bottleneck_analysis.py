"""
### bottleneck_analysis

Hourly. For each service (mapped in batches): the tier's SLOs over the window
(latency percentile, availability, error budget left), and bottleneck episodes:
each signal against its own seasonal baseline, rules for cpu_bound,
cache_bound, database_bound, memory_leak and dependency_failure, a causal
ranking of root causes (signals that deviate with no deviating upstream signal
in the dependency prior come first) and the remedy. Predicted bottlenecks come
from the latest capacity forecast.

Params: `window_hours` analyses that many hours up to the interval end instead
of the data interval (use it to review a longer period).

Emits **headroom_findings**, which triggers the action DAGs.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from headroom_provider.assets import FINDINGS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
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

        from headroom_provider.defaults import config, run_window, store
        from include.headroom.pipeline import run_analysis

        start, end = run_window(context)
        hours = context["params"].get("window_hours")
        if hours:
            start = end - timedelta(hours=float(hours))
        results = run_analysis(store(), config(), services, start, end)
        for r in results:
            for f in r["findings"]:
                print(f"{r['service']}: {f['type']} ({f['kind']}) from {f['start']}, cause {f['cause']} -> {f['remedy']}")
        return results

    @task(outlets=[FINDINGS])
    def publish(results: list[list[dict]], **context) -> dict:
        from headroom_provider.defaults import run_window

        rows = [r for batch in results for r in batch]
        _, end = run_window(context)
        context["outlet_events"][FINDINGS].extra = {"window_end": end.isoformat()}
        return {"services": len(rows), "findings": sum(len(r["findings"]) for r in rows),
                "breaches": sorted(r["service"] for r in rows if r["status"] == "breach")}

    publish(analyse_services.expand(services=list_service_batches()))


bottleneck_analysis()
