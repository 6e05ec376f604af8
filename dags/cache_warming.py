"""
### cache_warming

For each service with a cache_bound finding, plans which keys to warm: the
most requested keys that fit the memory budget, each with its adaptive TTL
(hot and stable -> 3600 s, objects over 1 MB -> 300 s, otherwise 600 s). Plans
run through `WarmCacheOperator` in dry-run; services without a trigger are
recorded as skipped.

Runs when **headroom_findings** is updated; emits **headroom_audit**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import ACTIONS, FINDINGS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.cache import WarmCacheOperator


@dag(
    schedule=[FINDINGS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "act"],
    doc_md=__doc__,
)
def cache_warming():
    @task
    def plan_warming(**context) -> list[dict]:
        from headroom_provider.defaults import as_of, config, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.pipeline import plan_all_warming

        skip_unless_fresh("warming", as_of(context))  # no service with fresh, valid data: the task is skipped
        return plan_all_warming(store(), config(), as_of(context))

    WarmCacheOperator.partial(task_id="warm_cache", outlets=[ACTIONS], map_index_template="{{ task.plan['service'] }}").expand(plan=plan_warming())


cache_warming()
