"""Every Asset of the pipeline, defined once and imported by the DAGs that produce or consume it."""

from __future__ import annotations

from airflow.sdk import Asset

METRICS_STAGED = Asset(name="headroom_metrics_staged", uri="headroom://store/staging", group="headroom")
METRICS_VALIDATED = Asset(name="headroom_metrics", uri="headroom://store/metrics", group="headroom")
FORECASTS = Asset(name="headroom_capacity", uri="headroom://store/capacity", group="headroom")
FINDINGS = Asset(name="headroom_findings", uri="headroom://store/findings", group="headroom")
ACTIONS = Asset(name="headroom_audit", uri="headroom://store/audit", group="headroom")
REPORT = Asset(name="headroom_report", uri="headroom://reports/latest", group="headroom")
