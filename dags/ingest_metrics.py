"""
### ingest_metrics

Reads the active metrics source (`pipeline.yaml` `ingest.source`: the embedded
sample fleet by default, or `prometheus`, `cloudwatch`, `files`) for the run's
data interval, converts units to each metric's canonical unit, and stages it as
one batch in the store (Parquet, or PostgreSQL per `store.yaml`). A source seen for
the first time loads `initial_history_days` of history; afterwards each run
reads its interval plus the late-data lookback. Re-running or backfilling an
interval stages the same batch again: nothing is duplicated.

Emits **headroom_metrics_staged**, which triggers `validate_metrics`.

Params: `history_days` forces a history load of that many days ending at the
interval end.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from headroom_provider.assets import BATCHES, METRICS_STAGED, SOURCE_UNITS, WATERMARKS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,  # history comes from the source's initial load or an explicit backfill
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "ingest"],
    doc_md=__doc__,
    params={"history_days": Param(None, type=["null", "integer"], minimum=1, description="Load this many days of history")},
)
def ingest_metrics():
    @task(multiple_outputs=True, outlets=[METRICS_STAGED, BATCHES, WATERMARKS, SOURCE_UNITS])
    def stage_batch(**context) -> dict:
        from headroom_provider.defaults import config, run_window, store
        from headroom_provider.hooks.sources import metrics_source
        from include.headroom.steps.ingest import ingest

        start, end = run_window(context)
        cfg = config()
        result = ingest(store(), cfg, metrics_source(cfg), start, end, history_days=context["params"].get("history_days"))
        context["outlet_events"][METRICS_STAGED].extra = {"batch_id": result.batch_id, "rows": result.rows}
        return result.to_xcom()

    stage_batch()


ingest_metrics()
