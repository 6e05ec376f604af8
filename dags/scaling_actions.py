"""
### scaling_actions

Plans one scaling decision per service and applies it to its target
(Kubernetes Deployment/StatefulSet scale or HPA floor, ECS service, EC2 Auto
Scaling group, Application Auto Scaling target):

- **reactive**: the Kubernetes HPA algorithm on CPU and memory with the tier's
  stabilization windows and rate policies; error rate above 5 % -> alarm
  instead of scaling;
- **predictive**: a trusted forecast `lead_time` ahead raises the floor, never
  scales in by itself; **scheduled**: time rules with time zones (scaling.yaml).
- **planned capacity**: services on AWS targets get the next hours' planned
  floors as scheduled actions (`schedule_capacity`), dry-run unless enabled
  and the interval is current.

Safety: every service is dry-run until `enabled: true` in the catalog; a run
for an interval that is not current (backfill, catch-up, re-run of an old
interval) records what it would have done and applies nothing; bounds, step
limit and target names are checked before any call; applying twice is a
no-op; applies run one at a time in the **headroom_scaling** pool (one slot)
and `max_active_runs=1`. High impact or cost above 1000 USD/month waits for a
human in `approve_scaling` (HITL ApprovalOperator); unanswered after 5 minutes
-> recorded as expired, nothing applied. `verify_scaling` compares the
symptom before and after and rolls back when worse or not converged.
Every outcome lands in the audit trail: decisions that are not applied (dry-run,
past interval, refused input) in one `record_not_applied` task, so a fleet of
a thousand dry-run services costs one task, not a thousand mapped applies.

Runs when **headroom_findings** is updated; emits **headroom_audit**.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from headroom_provider.assets import ACTIONS, FINDINGS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.scaling import (
    SCALING_POOL,
    ApproveScalingOperator,
    ScaleWorkloadOperator,
    ScheduleCapacityOperator,
    VerifyScalingSensor,
)
from headroom_provider.sensors.freshness import MetricsFreshnessSensor

LABEL = "{{ task.decision['service'] }}"


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
        from headroom_provider.defaults import as_of, config, now, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.steps.act import plan_all_scaling
        from include.headroom.scaling.settings import policy_settings
        from include.headroom.scaling.routing import route_decisions

        skip_unless_fresh("scaling", as_of(context))  # no service with fresh, valid data: the task is skipped
        decisions = plan_all_scaling(store(), config(), as_of(context)).to_xcom()
        return route_decisions(decisions, now(), policy_settings())

    @task(multiple_outputs=True, outlets=[ACTIONS])
    def record_not_applied(decisions: list[dict], **context) -> dict[str, int]:
        """Dry-run, past-interval and refused decisions: recorded together in one write, nothing is called."""
        from headroom_provider.operators.scaling import record_not_applied as record

        return record(context, decisions)

    @task
    def without_approval(decisions: list[dict]) -> list[dict]:
        from headroom_provider.operators.scaling import is_live

        return [d for d in decisions if is_live(d) and not d.get("requires_approval")]

    @task
    def needing_approval(decisions: list[dict]) -> list[dict]:
        from headroom_provider.operators.scaling import is_live

        return [d for d in decisions if is_live(d) and d.get("requires_approval")]

    @task
    def plan_capacity_schedules(**context) -> list[dict]:
        """The next hours' planned capacity of services on AWS targets, for scheduled actions (dry-run unless enabled and current)."""
        from headroom_provider.defaults import as_of, config, now, store
        from include.headroom.steps.act import plan_capacity_schedules as plan

        return plan(store(), config(), as_of(context), now()).to_xcom()

    decisions = plan_decisions()
    fresh >> decisions
    schedules = plan_capacity_schedules()
    fresh >> schedules
    ScheduleCapacityOperator.partial(task_id="schedule_capacity", pool=SCALING_POOL,
                                     map_index_template="{{ task.service }}").expand_kwargs(schedules)
    record_not_applied(decisions)
    direct, pending = without_approval(decisions), needing_approval(decisions)

    applied = ScaleWorkloadOperator.partial(
        task_id="apply_scaling", pool=SCALING_POOL, outlets=[ACTIONS], map_index_template=LABEL,
    ).expand(decision=direct)
    approval = ApproveScalingOperator.partial(task_id="approve_scaling", map_index_template=LABEL).expand(decision=pending)
    approved = ScaleWorkloadOperator.partial(
        task_id="apply_approved", approval_task_id="approve_scaling", trigger_rule="all_done", pool=SCALING_POOL,
        outlets=[ACTIONS], map_index_template=LABEL,
    ).expand(decision=pending)
    approval >> approved
    for name, outcomes in (("verify_scaling", applied.output), ("verify_approved", approved.output)):
        VerifyScalingSensor.partial(task_id=name, mode="reschedule", poke_interval=60, timeout=1200).expand(outcome=outcomes)


scaling_actions()
