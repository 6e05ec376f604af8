"""
### validate_metrics

Validates every staged batch with a Great Expectations suite (value present,
value within its unit's range, known service and tier, one point per key,
timestamp inside the batch interval and not in the future, batch fresh and not
empty). Valid rows go to the `metrics` table; failing rows go to `quarantine`
with the expectations they failed: none is dropped. The task fails, naming the
series, expectations and sample rows, when a batch's failure ratio passes the
configured threshold.

Runs when **headroom_metrics_staged** is updated; emits **headroom_metrics**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import METRICS_STAGED, METRICS_VALIDATED
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
    @task(outlets=[METRICS_VALIDATED])
    def validate_staged_batches(**context) -> list[dict]:
        from airflow.sdk.exceptions import AirflowFailException

        from headroom_provider.defaults import config, store
        from include.headroom.exceptions import DataError
        from include.headroom.pipeline import validate_pending

        try:
            results = validate_pending(store(), config())
        except DataError as exc:
            raise AirflowFailException(str(exc)) from exc
        context["outlet_events"][METRICS_VALIDATED].extra = {"batches": [r["batch_id"] for r in results]}
        return results

    validate_staged_batches()


validate_metrics()
