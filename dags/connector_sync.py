"""
### connector_sync

Keeps enterprise systems (SPEC section 7) in step with headroom. For every connector in
`connectors.yaml`, an `objects_<connector>` task lists its objects while it is enabled and a
sync task is mapped over them (dynamic task mapping) in the connector's own pool, so its quota holds
across concurrent runs. Pull objects (Salesforce, HubSpot, ServiceNow, SAP S/4HANA,
Dynamics 365, S3, SFTP) land records idempotently by (connector, object, record id,
version); push objects send capacity and cost figures out in batches. Each sync reads only
what changed since its durable watermark and advances it only after landing; calls are
rate-limited, retried with backoff and jitter, and guarded by a circuit breaker whose state
outlives task retries. Every sync is audited, and each landed object emits an Asset
(`headroom://connectors/<connector>/<object>`).

Runs every six hours and whenever **headroom_capacity** is updated (to push the new figures).
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from headroom_provider.assets import ACTIONS, CONNECTOR_RECORDS, FORECASTS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.connectors import CONNECTOR_LANDINGS, SyncConnectorOperator
from include.headroom.connectors.settings import read_connectors_file

CONNECTORS = {name: c for name, c in read_connectors_file().items() if c.objects}


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 */6 * * *", timezone="UTC"), assets=[FORECASTS]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # one writer per watermark
    default_args=DEFAULT_ARGS,
    tags=["headroom", "connectors"],
    doc_md=__doc__,
)
def connector_sync():
    @task
    def objects_to_sync(connector: str) -> list[str]:
        """The objects of ``connector`` to sync now: all of them while it is enabled in connectors.yaml, else none."""
        from include.headroom.connectors.settings import load_connectors

        settings = load_connectors().get(connector)
        return list(settings.objects) if settings is not None and settings.enabled else []

    for name, settings in CONNECTORS.items():
        SyncConnectorOperator.partial(
            task_id=f"sync_{name}", connector=name, pool=settings.pool,
            outlets=[CONNECTOR_RECORDS, ACTIONS, CONNECTOR_LANDINGS],
        ).expand(obj=objects_to_sync.override(task_id=f"objects_{name}")(name))


connector_sync()
