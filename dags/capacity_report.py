"""
### capacity_report

Daily, once a new capacity forecast and new findings have both landed. Writes the capacity and SLO
report under the reports folder: a self-contained HTML page (fleet overview by urgency with SLO status,
error budgets and cost now / projected / recommended; per service the forecast plot with its interval,
capacity line and saturation marker, replicas planned vs actual, bottleneck findings with their root
causes and remedy, actions from the audit trail with before and after; forecast accuracy over time and
against the SPEC horizon bands; scenarios side by side), its JSON twin, `latest.html|json` and one
drill-down page per service (`services/<service>.html`), shown by the **Headroom** page of the Airflow UI.
When `report.yaml` `s3_url` (or `HEADROOM_REPORT_S3_URL`) is set, the files are also copied to S3 with
the amazon provider's `S3Hook` (connection `aws_default`).

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
        from headroom_provider.ui.report_publish import publish_report
        from include.headroom.config import reports_dir
        from include.headroom.report.html import build_report
        from include.headroom.report.settings import load_report_settings

        settings = load_report_settings()
        paths = build_report(store(), config(), as_of(context), reports_dir(), settings)
        print(f"Report written to {paths['html']} (latest: {paths['latest_html']}, figures: {paths['json']})")
        result = {k: str(v) for k, v in paths.items()}
        if settings.s3_target:
            bucket, prefix = settings.s3_target
            result["s3"] = publish_report(paths, bucket, prefix, settings.s3_conn_id)
            print(f"Report copied to s3://{bucket}/{prefix} ({len(result['s3'])} files)")
        return result

    write_report()


capacity_report()
