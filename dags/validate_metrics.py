"""
### validate_metrics

Validates every staged batch with Great Expectations, at run time: one suite
for what every row needs (a numeric, finite value; known service, tier and
metric; a timestamp with a zone, on the step grid, inside the batch interval,
not in the future; one point per key) and one suite per metric family
(`include/headroom/config/validation.yaml`: unit ranges, integer replicas
within the catalog, plausible latency, spikes, stuck exporters, counter
resets). Valid rows go to `metrics`; failing rows go to `quarantine` with the
expectations they failed and the observed value; a batch-level failure (empty,
schema drift, wrong column kinds, stale) quarantines the whole batch. Nothing
is dropped. Results are stored per batch and service (`validation_results`,
read by the gates in front of every decision) and rendered as GX Data Docs
under the reports directory; the task log prints their path.

Below a tier's failure threshold the task warns and continues; above it the
task fails, naming the series, expectations and offending rows. Quarantined
rows can be listed, shown and re-admitted after a fix with
`python -m include.headroom quarantine`.

Runs when **headroom_metrics_staged** is updated; emits **headroom_metrics**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import BATCHES, METRICS_STAGED, METRICS_VALIDATED, QUARANTINE, VALIDATION_RESULTS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=[METRICS_STAGED],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "validate"],
    doc_md=__doc__,
)
def validate_metrics():
    @task(outlets=[METRICS_VALIDATED, QUARANTINE, VALIDATION_RESULTS, BATCHES])
    def validate_staged_batches(**context) -> list[dict]:
        import logging

        from airflow.sdk.exceptions import AirflowFailException

        from headroom_provider.defaults import config, store
        from include.headroom.exceptions import DataError
        from include.headroom.steps.validate import validate_pending
        from include.headroom.validation.docs import docs_root

        log = logging.getLogger("headroom.validation")
        try:
            results = validate_pending(store(), config()).to_xcom()
        except DataError as exc:
            log.error("Data Docs: %s", docs_root() / "index.html")
            raise AirflowFailException(str(exc)) from exc
        for r in results:
            log.info("Batch %s: %s, %d rows in, %d valid, %d quarantined; Data Docs: %s",
                     r["batch_id"], r["status"], r["rows_in"], r["rows_valid"], r["rows_quarantined"], r["data_docs"])
            if r["message"]:
                log.warning("Quarantined rows below the failure threshold:\n%s", r["message"])
        if results:
            log.info("Data Docs index: %s", docs_root() / "index.html")
        context["outlet_events"][METRICS_VALIDATED].extra = {"batches": [r["batch_id"] for r in results]}
        return results

    validate_staged_batches()


validate_metrics()
