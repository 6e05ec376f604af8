"""Every Asset of the pipeline, defined once and imported by the DAGs that produce or consume it.

There is one Asset per store table (``headroom://store/<table>``), so a user's own DAG
can schedule on any table the pipeline writes, plus the report.
"""

from __future__ import annotations

from airflow.sdk import Asset


def _table(table: str, name: str | None = None) -> Asset:
    return Asset(name=name or f"headroom_{table}", uri=f"headroom://store/{table}", group="headroom")


METRICS_STAGED = _table("staging", "headroom_metrics_staged")
METRICS_VALIDATED = _table("metrics")
FORECASTS = _table("capacity")
FINDINGS = _table("findings")
ACTIONS = _table("audit")
BATCHES = _table("batches")
WATERMARKS = _table("watermarks")
SOURCE_UNITS = _table("source_units")
QUARANTINE = _table("quarantine")
VALIDATION_RESULTS = _table("validation_results")
FORECAST_SERIES = _table("forecasts")
FORECAST_ACCURACY = _table("forecast_accuracy")
SCENARIOS = _table("scenarios")
SLO_STATUS = _table("slo_status")
CONNECTOR_RECORDS = _table("connector_records")
ALERTS = _table("alerts")
REPORT = Asset(name="headroom_report", uri="headroom://reports/latest", group="headroom")

# The Asset of each store table, by table name.
TABLE_ASSETS: dict[str, Asset] = {a.uri.rsplit("/", 1)[1]: a for a in (
    METRICS_STAGED, METRICS_VALIDATED, FORECASTS, FINDINGS, ACTIONS, BATCHES, WATERMARKS, SOURCE_UNITS, QUARANTINE,
    VALIDATION_RESULTS, FORECAST_SERIES, FORECAST_ACCURACY, SCENARIOS, SLO_STATUS, CONNECTOR_RECORDS, ALERTS,
)}
