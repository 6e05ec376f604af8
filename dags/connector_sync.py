"""
### connector_sync

Keeps enterprise systems (SPEC section 7) in step with headroom. For every shipped connector
(`CONNECTORS` below, one per connector of `connectors.yaml` that has objects), an
`objects_<connector>` task reads `connectors.yaml` at run time and lists the connector's objects
while it is enabled (none otherwise), and a sync task is mapped over them (dynamic task mapping) in
the connector's own pool `connector_<name>`, so its quota holds across concurrent runs. The file is
not read while the DAG is parsed; a connector added to `connectors.yaml` is added here too (a test
checks both lists agree). Pull objects (Salesforce, HubSpot, ServiceNow, SAP S/4HANA,
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

# Connector -> its Airflow pool. Enabled or not is decided at run time from connectors.yaml.
CONNECTORS: dict[str, str] = {name: f"connector_{name}" for name in (
    "salesforce", "hubspot", "servicenow", "sap_s4hana", "dynamics_365", "aws_s3", "sftp", "capacity_export",
)}


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

    for name, pool in CONNECTORS.items():
        SyncConnectorOperator.partial(
            task_id=f"sync_{name}", connector=name, pool=pool,
            outlets=[CONNECTOR_RECORDS, ACTIONS, CONNECTOR_LANDINGS],
        ).expand(obj=objects_to_sync.override(task_id=f"objects_{name}")(name))


connector_sync()
