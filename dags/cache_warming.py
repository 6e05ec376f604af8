"""
### cache_warming

Warms each service's Redis cache before it is needed, without evicting what is
already hot. A service is warmed when:

- the bottleneck analysis found it **cache_bound** (a **cache_loss** when the
  hit ratio itself dropped), on **headroom_findings**;
- its forecast load within the lead time (`cache.yaml` `warming.lead_time_s`)
  reaches the peak ratio over the last hour (**forecast_peak**);
- the schedule fires (`15 */6 * * *`, UTC): every service is refreshed.

Keys come from the service's access log, ranked by recency-weighted request
frequency x the forecast traffic of the coming peak, within the byte budget and
key count; each gets its adaptive TTL (hot and stable -> 3600 s, objects over
1 MB -> 300 s, otherwise 600 s; per-tier overrides). `WarmCacheOperator` reads
`INFO memory` first and stays under the memory fraction of `maxmemory`, skips
keys that are still fresh, writes atomic pipelined batches with `SET ... EX`,
rate limited, and records keys, bytes, errors, duration and the hit ratio
before and after in the audit trail.

Params: `dry_run` (unset: `cache.yaml` `warming.dry_run` decides at run time,
shipped true) only records the plan; `trigger` forces a trigger (`manual`, `schedule`, `cache_loss`, ...) for
`services` (default: all).

Emits **headroom_audit**.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from headroom_provider.assets import ACTIONS, FINDINGS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.cache import WarmCacheOperator

# The scheduled refresh of every service (UTC): a quarter past the six-hourly forecast runs.
SCHEDULE = "15 */6 * * *"


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(SCHEDULE, timezone="UTC"), assets=[FINDINGS]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["headroom", "act"],
    doc_md=__doc__,
    params={
        "dry_run": Param(None, type=["null", "boolean"],
                         description="Record the plan instead of writing to the cache (unset: cache.yaml warming.dry_run)"),
        "trigger": Param(None, type=["null", "string"], enum=[None, "manual", "schedule", "cache_loss", "cache_bound", "forecast_peak"],
                         description="Warm every selected service for this reason"),
        "services": Param(None, type=["null", "array"], description="Services to consider (default: the catalog)"),
    },
)
def cache_warming():
    @task
    def plan_warming(**context) -> list[dict]:
        from headroom_provider.defaults import as_of, config, store
        from headroom_provider.gates import skip_unless_fresh
        from include.headroom.steps.act import plan_all_warming

        params = context["params"]
        trigger = params.get("trigger") or ("schedule" if str(context["dag_run"].run_type).lower().endswith("scheduled") else None)
        skip_unless_fresh("warming", as_of(context), params.get("services"))  # no service with fresh, valid data: skipped
        return plan_all_warming(store(), config(), as_of(context), trigger=trigger, services=params.get("services")).to_xcom()

    WarmCacheOperator.partial(
        task_id="warm_cache", outlets=[ACTIONS], map_index_template="{{ task.plan['service'] }}",
        dry_run="{{ params.dry_run }}",
    ).expand(plan=plan_warming())


cache_warming()
