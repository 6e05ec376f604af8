"""
### scaling_actions

Plans one scaling decision per service and applies each through
`ScaleWorkloadOperator`: the HPA rule on CPU and memory (rate-limited, within
[min, max]), error rate above 5 % -> alarm instead of scaling, an observed
cpu_bound finding -> scale out, and a trusted forecast as a floor (never a
scale-in). Every service is dry-run until enabled in the catalog; every
outcome lands in the audit trail. Services with stale or invalid data are
skipped with the reason recorded.

Runs when **headroom_findings** is updated; emits **headroom_audit**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import ACTIONS, FINDINGS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.scaling import ScaleWorkloadOperator
from headroom_provider.sensors.freshness import MetricsFreshnessSensor


@dag(
    schedule=[FINDINGS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # two runs must never apply decisions for the same target at once
    default_args=DEFAULT_ARGS,
    tags=["headroom", "act"],
    doc_md=__doc__,
)
def scaling_actions():
    fresh = MetricsFreshnessSensor(task_id="wait_for_fresh_metrics", poke_interval=60, timeout=900, mode="reschedule")

    @task
    def plan_decisions(**context) -> list[dict]:
        from headroom_provider.defaults import as_of, config, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.pipeline import plan_all_scaling

        skip_unless_fresh("scaling", as_of(context))  # no service with fresh, valid data: the task is skipped
        return plan_all_scaling(store(), config(), as_of(context))

    decisions = plan_decisions()
    fresh >> decisions
    ScaleWorkloadOperator.partial(task_id="apply_scaling", outlets=[ACTIONS], map_index_template="{{ task.decision['service'] }}").expand(decision=decisions)


scaling_actions()
