"""Alerts: conditions read from the store become incidents with a lifecycle, routed to channels by ``alerts.yaml``."""

from __future__ import annotations

from include.headroom.alerts.conditions import EVALUATED_KINDS, evaluate_conditions, event_condition
from include.headroom.alerts.lifecycle import Action, Condition, DeliveryResult, Incident, Notice, plan, record_delivery
from include.headroom.alerts.metrics import GAUGES, collect_samples, registry_of
from include.headroom.alerts.service import AlertRunResult, is_past_interval, run_alerts
from include.headroom.alerts.settings import AlertSettings, Kind, Severity, load_alert_settings, parse_alert_settings

__all__ = [
    "EVALUATED_KINDS", "GAUGES", "Action", "AlertRunResult", "AlertSettings", "Condition", "DeliveryResult", "Incident", "Kind",
    "Notice", "Severity", "collect_samples", "evaluate_conditions", "event_condition", "is_past_interval", "load_alert_settings",
    "parse_alert_settings", "plan", "record_delivery", "registry_of", "run_alerts",
]
