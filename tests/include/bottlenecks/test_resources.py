"""Resources the sample fleet does not report (disk, network, queue) and the pool, through the resource mapping, on synthetic frames.

Each case takes a healthy fleet service, adds the resource's metric with its own
daily pattern, then saturates it for an hour with the latency symptom.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from include.headroom.bottlenecks.analysis import analyze_service, slo_status, use_report, wide

SERVICE = "user-profile"  # healthy in the sample fleet


@pytest.fixture(scope="module")
def healthy(fleet, fleet_history):
    rows = fleet_history[fleet_history["service"] == SERVICE]
    return rows[rows["ts"] >= fleet.anchor - pd.Timedelta(days=10)].reset_index(drop=True)


def _add_metric(rows: pd.DataFrame, metric: str, base: float, unit: str, seed: int = 1) -> pd.DataFrame:
    ts = pd.DatetimeIndex(rows.loc[rows["metric"] == "throughput", "ts"])
    hour = ts.hour + ts.minute / 60
    rng = np.random.default_rng(seed)
    value = base * (1 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * (1 + 0.03 * rng.standard_normal(len(ts)))
    extra = pd.DataFrame({"ts": ts, "service": SERVICE, "tier": "enterprise", "metric": metric, "value": value, "unit": unit,
                          "source": "synthetic", "labels": ""})
    return pd.concat([rows, extra], ignore_index=True)


def _incident(rows: pd.DataFrame, start: pd.Timestamp, hours: float, changes: dict[str, float | tuple[str, float]]) -> pd.DataFrame:
    """Set metrics inside the incident: a number sets the value, ("x", f) multiplies it."""
    out = rows.copy()
    inside = (out["ts"] >= start) & (out["ts"] < start + pd.Timedelta(hours=hours))
    for metric, change in changes.items():
        sel = inside & (out["metric"] == metric)
        if isinstance(change, tuple):
            out.loc[sel, "value"] *= change[1]
        else:
            out.loc[sel, "value"] = change
    return out


CASES = {
    # resource: (metric, base, unit, incident changes, expected type, remedy)
    "disk": ("disk_io", 30.0, "percent", {"disk_io": 93.0, "response_time": ("x", 2.5)}, "io_bound", "move_work_async"),
    "network": ("network_io", 25.0, "percent", {"network_io": 91.0, "response_time": ("x", 2.0)}, "network_bound", "scale_out"),
    "queue": ("queue_length", 20.0, "count", {"queue_length": ("x", 4.0), "response_time": ("x", 2.0)}, "concurrency", "tune_pool"),
}


@pytest.mark.parametrize("resource", sorted(CASES))
def test_resource_bottleneck_found_through_the_mapping(config, fleet, healthy, resource):
    metric, base, unit, changes, expected_type, remedy = CASES[resource]
    svc = config.service(SERVICE)
    start = fleet.anchor - pd.Timedelta(hours=20)
    rows = _incident(_add_metric(healthy, metric, base, unit), start, 1.0, changes)
    found = analyze_service(config, svc, rows, fleet.anchor - pd.Timedelta(days=1), fleet.anchor)
    assert [(f.type, f.top_cause, f.remedy) for f in found] == [(expected_type, metric, remedy)]
    f = found[0]
    assert start <= f.start <= start + pd.Timedelta(minutes=10) and f.end >= start + pd.Timedelta(minutes=50)
    cause = f.root_causes[0]
    assert cause.is_root and cause.prior_weight == 0.6 and cause.onset == start.isoformat()
    assert cause.correlation is not None and cause.correlation > 0.5

    # the same metric at its usual level never makes a finding
    quiet = _add_metric(healthy, metric, base, unit)
    assert analyze_service(config, svc, quiet, fleet.anchor - pd.Timedelta(days=7), fleet.anchor) == []


def test_pool_exhaustion_without_upstream_cause_is_concurrency(config, fleet, healthy):
    svc = config.service(SERVICE)
    start = fleet.anchor - pd.Timedelta(hours=10)
    rows = _incident(healthy, start, 1.5, {"connection_pool": 0.97, "response_time": ("x", 2.0)})
    found = analyze_service(config, svc, rows, fleet.anchor - pd.Timedelta(days=1), fleet.anchor)
    assert [(f.type, f.top_cause, f.remedy) for f in found] == [("concurrency", "connection_pool", "tune_pool")]


def test_pool_exhaustion_caused_by_a_slow_database_is_database_bound(config, fleet, healthy):
    """The pool fills because queries are slow: the database is the bottleneck, not the pool."""
    svc = config.service(SERVICE)
    start = fleet.anchor - pd.Timedelta(hours=10)
    rows = _incident(healthy, start, 1.5, {"connection_pool": 0.97, "database_performance": ("x", 5.0), "response_time": ("x", 2.0)})
    found = analyze_service(config, svc, rows, fleet.anchor - pd.Timedelta(days=1), fleet.anchor)
    assert [(f.type, f.top_cause) for f in found] == [("database_bound", "database_performance")]
    pool = next(c for c in found[0].root_causes if c.signal == "connection_pool")
    assert not pool.is_root


def test_memory_pressure_with_errors_is_memory_bound(config, fleet, healthy):
    svc = config.service(SERVICE)
    start = fleet.anchor - pd.Timedelta(hours=6)
    rows = _incident(healthy, start, 1.0, {"memory_utilization": 96.0, "error_rate": 0.03})
    found = analyze_service(config, svc, rows, fleet.anchor - pd.Timedelta(days=1), fleet.anchor)
    assert [(f.type, f.remedy) for f in found] == [("memory_bound", "scale_out")]
    assert found[0].top_cause == "memory_utilization"


def test_use_report_levels_against_the_budgets(config, fleet, healthy):
    svc = config.service(SERVICE)
    at = fleet.anchor
    rows = _incident(_add_metric(healthy, "disk_io", 30.0, "percent"), at - pd.Timedelta(minutes=10), 1.0,
                     {"disk_io": 86.0, "connection_pool": 0.95, "cpu_utilization": 72.0})
    frame = wide(rows)
    report = {r["resource"]: r for r in use_report(config, svc, frame, None, at)}
    assert report["disk"]["level"] == "warning" and report["disk"]["utilization"] == pytest.approx(0.86)
    assert report["connection_pool"]["level"] == "critical" and report["connection_pool"]["saturation"]["pool_over_alarm"] is True
    assert report["cpu"]["level"] == "target"
    assert "network" not in report and "queue" not in report  # no metric, no row
    assert report["service"]["level"] == "ok"  # p99 latency well inside 50 ms


def test_slo_status_carries_burn_alerts_budget_and_use(config, fleet, fleet_history):
    svc = config.service("payments-gateway")
    rows = fleet_history[fleet_history["service"] == svc.name]
    truth = next(t for t in fleet.ground_truth() if t.kind == "dependency_failure")
    during = pd.Timestamp(truth.start) + pd.Timedelta(hours=1)
    status = slo_status(config, svc, rows, during - pd.Timedelta(hours=1), during)
    assert status["status"] == "breach" and status["alert"] == "page"
    alerts = {a["name"]: a for a in json.loads(status["burn_alerts"])}
    # 12 % errors on a 0.01 % budget: 1200x over the last hour and the last 5 minutes
    assert alerts["page_fast"]["firing"] and alerts["page_fast"]["short_burn"] == pytest.approx(1200, rel=0.1)
    assert status["error_budget_remaining"] < 0 and status["budget_exhausted_at"] == during
    use = {r["resource"]: r for r in json.loads(status["use"])}
    assert set(use) >= {"cpu", "memory", "cache", "connection_pool", "database", "service"}
    # SPEC alarms: error rate > 5 % for two 5-minute periods fires; latency and hit ratio are fine
    assert use["service"]["alarms"] == {"error_rate": True, "mean_latency_ms": False, "cache_hit_ratio": False}

    quiet = slo_status(config, svc, rows, fleet.anchor - pd.Timedelta(days=20), pd.Timestamp(truth.start))
    assert quiet["alert"] == "none" and quiet["status"] == "ok" and quiet["budget_exhausted_at"] is None or \
        quiet["budget_exhausted_at"] > pd.Timestamp(truth.start) + pd.Timedelta(days=30)
