"""
### capacity_report

Daily, once a new capacity forecast and new findings have both landed. Writes the capacity and SLO report: a self-contained HTML page (fleet
overview sorted by saturation urgency, one forecast plot per service with its
interval and capacity line, bottleneck findings, actions from the audit trail)
and its JSON twin, as `capacity_report_<date>.html|json` and `latest.html|json`
under the reports folder.

Runs when both **headroom_capacity** and **headroom_findings** are updated; emits **headroom_report**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import FINDINGS, FORECASTS, REPORT
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=(FORECASTS & FINDINGS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "report"],
    doc_md=__doc__,
)
def capacity_report():
    @task(outlets=[REPORT])
    def write_report(**context) -> dict:
        from headroom_provider.defaults import as_of, config, store
        from include.headroom.config import reports_dir
        from include.headroom.report.html import build_report

        paths = build_report(store(), config(), as_of(context), reports_dir())
        print(f"Report written to {paths['html']}")
        return {k: str(v) for k, v in paths.items()}

    write_report()


capacity_report()
