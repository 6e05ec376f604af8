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

Three steps, so a large fleet's plots are drawn on every worker: `collect_figures` reads the store
once (the figures, kept for the run under the reports folder's `.staging/`), `draw_service_pages`
maps over batches of `batch_size` services (their plots and drill-down pages), and `write_report`
writes the fleet page (the `detailed_services` most urgent services of `report.yaml` in full, every
service in the overview) and the twin, copies to S3 and removes the run's staging files.

Runs when both **headroom_capacity** and **headroom_findings** are updated; emits **headroom_report**.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

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
    params={"batch_size": Param(50, type="integer", minimum=1, description="Services whose plots and pages one mapped task draws")},
)
def capacity_report():
    @task
    def collect_figures(**context) -> list[list[str]]:
        from headroom_provider.defaults import as_of, config, service_batches, store
        from headroom_provider.report_staging import save_figures
        from include.headroom.report.figures import collect_figures as collect
        from include.headroom.report.settings import load_report_settings

        figures = collect(store(), config(), as_of(context), load_report_settings())
        save_figures(context, figures)
        print(f"Figures of {len(figures['overview'])} services collected (forecast run {figures['run_date'] or 'none'})")
        return service_batches(int(context["params"]["batch_size"]), [o["service"] for o in figures["overview"]])

    @task(map_index_template="{{ task.op_kwargs['services'][0] }}+")
    def draw_service_pages(services: list[str], **context) -> int:
        from headroom_provider.defaults import config, store
        from headroom_provider.report_staging import load_figures, save_plots
        from include.headroom.config import reports_dir
        from include.headroom.report.html import detailed_names, write_service_pages
        from include.headroom.report.settings import load_report_settings

        settings = load_report_settings()
        figures = load_figures(context)
        plots = write_service_pages(store(), config(), figures, reports_dir(), settings, services)
        save_plots(context, {n: plots[n] for n in detailed_names(figures, settings) if n in plots})
        print(f"{len(plots)} drill-down pages written under {reports_dir() / 'services'}")
        return len(plots)

    @task(multiple_outputs=True, outlets=[REPORT])
    def write_report(drawn: list[int], **context) -> dict:
        from headroom_provider.report_staging import discard, load_figures, load_plots
        from headroom_provider.ui.report_publish import publish_report
        from include.headroom.config import reports_dir
        from include.headroom.report.html import detailed_names, write_fleet_report
        from include.headroom.report.settings import load_report_settings

        settings = load_report_settings()
        figures = load_figures(context)
        paths = write_fleet_report(figures, load_plots(context, detailed_names(figures, settings)), reports_dir(), settings)
        print(f"Report written to {paths['html']} (latest: {paths['latest_html']}, figures: {paths['json']}; "
              f"{sum(drawn)} drill-down pages)")
        result = {k: str(v) for k, v in paths.items()}
        if settings.s3_target:
            bucket, prefix = settings.s3_target
            result["s3"] = publish_report(paths, bucket, prefix, settings.s3_conn_id)
            print(f"Report copied to s3://{bucket}/{prefix} ({len(result['s3'])} files)")
        discard(context)
        return result

    write_report(draw_service_pages.expand(services=collect_figures()))


capacity_report()
