"""
### connector_sync

Keeps enterprise systems in step with headroom's capacity and cost figures.
Each sync reads only what changed since its durable watermark, lands records
idempotently by (connector, object, record id, version), delivers them
within the connector's quota, and advances the watermark only after landing.
Every sync is audited (pages, records read/written/failed, calls, throttling).

Runs every six hours and whenever **headroom_capacity** is updated.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag

from headroom_provider.assets import ACTIONS, CONNECTOR_RECORDS, FORECASTS
from headroom_provider.defaults import DEFAULT_ARGS, START_DATE
from headroom_provider.operators.connectors import SyncConnectorOperator


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
    SyncConnectorOperator(task_id="sync_capacity_export", connector="capacity_export", obj="capacity", outlets=[ACTIONS, CONNECTOR_RECORDS])


connector_sync()
