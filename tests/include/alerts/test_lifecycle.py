"""The incident lifecycle and the conditions read from the store, without Airflow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, UTC

import pandas as pd

from include.headroom.alerts import Condition, DeliveryResult, Kind, Severity, parse_alert_settings, run_alerts
from include.headroom.alerts.conditions import evaluate_conditions

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RAW = {
    "channels": {"log": {"type": "log"}}, "routes": [{"match": {}, "channels": ["log"]}],
    "rate_limit": {"max_notifications": 5, "window_s": 3600}, "delivery": {"attempts": 1, "backoff_s": 0, "max_backoff_s": 0},
    "past_interval_s": 4200, "airflow_base_url": "http://127.0.0.1:8080",
    "kinds": {"predicted_bottleneck": {"min_probability": 0.7, "severity": "ticket"},
              "saturation": {"within_days": 7, "page_within_days": 2},
              "error_rate_alarm": {"severity": "page"}, "out_of_bounds": {"severity": "ticket"}},
}


class Outbox:
    def __init__(self) -> None:
        self.sent = []

    def __call__(self, notice):
        self.sent.append(notice)
        return [DeliveryResult("log", "sent")]


def settings():
    return parse_alert_settings(RAW, owners={"payments", "commerce", "identity", "web-team", "platform", "discovery"},
                                tiers={"basic", "standard", "professional", "enterprise", "critical"})


def test_a_backfill_records_and_sends_nothing(store):
    out = Outbox()
    cond = Condition(service="a", kind=Kind.SLO_BURN, subject="error_budget", severity=Severity.PAGE, summary="burning")
    result = run_alerts(store, settings(), [cond], T0 - timedelta(days=3), T0, out)
    assert result.past_interval and out.sent == [] and store.read("alerts").empty


def test_a_new_episode_after_resolve_gets_a_new_key(store):
    out = Outbox()
    cond = Condition(service="a", kind=Kind.SLO_BURN, subject="error_budget", severity=Severity.PAGE, summary="burning")
    for i, conds in enumerate([[cond], [], [cond]]):
        at = T0 + timedelta(minutes=30 * i)
        run_alerts(store, settings(), conds, at, at, out, [Kind.SLO_BURN])
    assert [(n.action.value, n.incident_key[-17:]) for n in out.sent] == [
        ("open", "2026-12-05T12:00Z"), ("resolve", "2026-12-05T12:00Z"), ("open", "2026-12-05T13:00Z")]
    assert sorted(store.read("alerts")["status"]) == ["open", "resolved"]


def test_an_event_is_told_once_and_closed(store):
    out = Outbox()
    cond = Condition(service="capacity_forecast", kind=Kind.RUN_FAILED, subject="scheduled__2026-12-05T02:00:00+00:00",
                     severity=Severity.TICKET, summary="task failed")
    for _ in range(2):  # the callback of a second failing task of the same run
        run_alerts(store, settings(), [cond], T0, T0, out, [])
    assert [n.action.value for n in out.sent] == ["open"]
    row = store.read("alerts").iloc[0]
    assert (row.status, row.notified_action) == ("resolved", "closed")


def rows(name, records):
    from include.headroom.metrics.schema import TABLES

    defaults = {"timestamp": pd.NaT, "string": "", "float64": float("nan"), "int64": 0, "bool": False}
    return pd.DataFrame([{c: r.get(c, defaults[k]) for c, k in TABLES[name].columns.items()} for r in records])


def test_conditions_from_the_store(store, config):
    at = pd.Timestamp(T0)
    store.upsert("slo_status", rows("slo_status", [
        {"window_end": at, "service": "payments-gateway", "tier": "critical", "alert": "page", "burn_rate": 16.0,
         "error_budget_remaining": 0.7, "burn_alerts": json.dumps([{"name": "page_1h", "firing": True}])},
        {"window_end": at, "service": "auth-service", "tier": "critical", "alert": "none", "burn_rate": 0.5},
        {"window_end": at - pd.Timedelta(hours=1), "service": "edge-router", "tier": "critical", "alert": "ticket"},
    ]))
    store.upsert("findings", rows("findings", [
        {"window_end": at, "service": "search-api", "kind": "predicted", "type": "cpu_bound", "confidence": 0.85,
         "start": at + pd.Timedelta(hours=30), "summary": "cpu saturates"},
        {"window_end": at, "service": "docs-site", "kind": "predicted", "type": "cpu_bound", "confidence": 0.7, "start": at},
    ]))
    store.upsert("capacity", rows("capacity", [
        {"run_date": "2026-12-05", "service": "checkout-api", "metric": "requests", "saturation_at": at + pd.Timedelta(days=1),
         "capacity_limit": 2200.0, "saturation_probability": 0.9, "replicas_needed_peak": 11},
        {"run_date": "2026-12-05", "service": "orders-api", "metric": "requests", "saturation_at": at + pd.Timedelta(days=5),
         "capacity_limit": 2000.0, "saturation_probability": 0.6, "replicas_needed_peak": 9},
        {"run_date": "2026-12-05", "service": "user-profile", "metric": "requests", "saturation_at": at + pd.Timedelta(days=20)},
    ]))
    decision = {"as_of": str(at), "rule": "error_rate_alarm"}
    store.upsert("audit", rows("audit", [
        {"audit_id": "1", "kind": "scaling", "service": "notifications", "action": "alarm", "status": "dry_run",
         "reason": "dry-run: error rate 7.0% > 5%: more replicas do not fix a failing dependency", "detail": json.dumps(decision)},
        {"audit_id": "2", "kind": "scaling", "service": "catalog-api", "action": "alarm", "status": "dry_run", "reason": "old",
         "detail": json.dumps({"as_of": str(at - pd.Timedelta(hours=1)), "rule": "error_rate_alarm"})},
        {"audit_id": "3", "kind": "scaling", "service": "blog-frontend", "action": "alarm", "status": "dry_run", "reason": "out",
         "detail": json.dumps({"as_of": str(at), "rule": "out_of_bounds"})},
    ]))
    got = {(c.kind.value, c.service): c for c in evaluate_conditions(store, config, settings(), T0)}
    assert set(got) == {("slo_burn", "payments-gateway"), ("predicted_bottleneck", "search-api"), ("saturation", "checkout-api"),
                        ("saturation", "orders-api"), ("error_rate_alarm", "notifications"), ("out_of_bounds", "blog-frontend")}
    burning = got["slo_burn", "payments-gateway"]
    assert burning.severity is Severity.PAGE and "16.0x (page_1h)" in burning.summary
    assert got["slo_burn", "payments-gateway"].owner == "payments"
    assert "probability 85% in 30 h" in got["predicted_bottleneck", "search-api"].summary
    assert got["saturation", "checkout-api"].severity is Severity.PAGE and got["saturation", "orders-api"].severity is Severity.TICKET
    assert got["error_rate_alarm", "notifications"].severity is Severity.PAGE
    assert got["error_rate_alarm", "notifications"].summary.startswith("alarm instead of scaling: error rate 7.0% > 5%")
    assert got["out_of_bounds", "blog-frontend"].severity is Severity.TICKET
