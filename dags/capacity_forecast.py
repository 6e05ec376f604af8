"""
### capacity_forecast

Daily. Fans out over batches of services (dynamic task mapping, `batch_size`
services per task) in the **headroom_forecasting** pool, so forecasting never
takes more than the pool's slots. Each mapped task runs its whole batch
through the vectorised `auto` engine (one run per time grid): outliers
replaced, seasonality found per series, level shifts adjusted, rolling-origin
backtests of the candidates (seasonal naive, weekly naive, trend + Fourier
seasons, ETS, Theta, MSTL-like, AR), the best combined with a worst-case guard
against seasonal naive, conformal intervals; forecasts whose backtest MAPE is
above the accuracy gate are marked untrusted. From the forecast: time
to saturation (median and upper bound) against the service's capacity,
replicas needed per hour at the tier's CPU target, cost now / forecast /
recommended, and each configured scenario. Forecasts of earlier runs are
scored against the actuals that arrived since (`forecast_accuracy`).
Services with stale or invalid data are skipped with the reason recorded.

A run not finished 2 hours after it was queued (04:00 UTC) raises Airflow's
deadline alert, told through the alert channels (`deadline_missed`).

Emits **headroom_capacity**.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import AsyncCallback, CronDataIntervalTimetable, DeadlineAlert, DeadlineReference, Param, dag, task

from headroom_provider.assets import CAPACITY_PLANS, FORECASTS, FORECAST_ACCURACY, FORECAST_SERIES, SCENARIOS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE

# Created by `make airflow-db` / the test fixtures (`airflow pools set`); listed in airflow_settings.yaml.
FORECAST_POOL = "headroom_forecasting"
# The daily workflow must be done 2 hours after its 02:00 start. Measured from when the run was queued: with a
# data-interval timetable the logical date is the interval's start, a day earlier.
DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_QUEUED_AT,
    interval=timedelta(hours=2),
    callback=AsyncCallback("headroom_provider.notifications.alerts.deadline_missed",
                           kwargs={"dag_id": "capacity_forecast", "deadline": "2 hours after it was queued at 02:00 UTC"}),
)


@dag(
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,  # a forecast for a past day is made on demand, by backfill
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    # Airflow 3.3.2's `dags test` cannot finish a run of a DAG with a deadline (DAG.test() deserializes its own copy,
    # whose deadlines are definitions, and DagRun.update_state looks them up as stored ids); scripts/pipeline_run.py
    # turns them off for its in-process runs. The scheduler, the cluster and backfills keep the deadline.
    deadline=None if os.environ.get("HEADROOM_DAG_DEADLINES") == "off" else DEADLINE,
    tags=["headroom", "forecast"],
    doc_md=__doc__,
    params={"batch_size": Param(50, type="integer", minimum=1, description="Services per mapped task (one engine run per batch)")},
)
def capacity_forecast():
    @task
    def list_service_batches(**context) -> list[list[str]]:
        from headroom_provider.defaults import service_batches

        return service_batches(int(context["params"]["batch_size"]))

    @task(pool=FORECAST_POOL, map_index_template="{{ task.op_kwargs['services'][0] }}+")
    def forecast_services(services: list[str], **context) -> list[dict]:
        from threadpoolctl import threadpool_limits

        from headroom_provider.defaults import config, json_safe, run_window, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.steps.forecast import run_forecasts

        _, as_of = run_window(context)
        skip_unless_fresh("forecast", as_of, services)  # no fresh, valid service in the batch: the task is skipped
        # One math-library thread per task: the pool already runs tasks side by side on the worker's cores,
        # and a batch's small matrix operations only pay thread start-up (about 1.7x the CPU without the cap).
        with threadpool_limits(limits=1):
            return json_safe(run_forecasts(store(), config(), services, as_of).to_xcom())

    @task(multiple_outputs=True, outlets=[FORECASTS, FORECAST_SERIES, FORECAST_ACCURACY, SCENARIOS, CAPACITY_PLANS])
    def publish(results: list[list[dict]]) -> dict:
        rows = [r for batch in results for r in batch]
        saturating = sorted({r["service"] for r in rows if r.get("saturation_at")})
        return {"series": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
                "untrusted": sum(r["status"] == "ok" and not r.get("trusted") for r in rows), "saturating": saturating}

    publish(forecast_services.expand(services=list_service_batches()))


capacity_forecast()
