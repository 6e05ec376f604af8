"""Bottleneck analysis on the sample fleet: every injected incident found with the right type and cause, none on healthy services."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.bottlenecks.analysis import _runs, analyze_service, predicted_findings, slo_status


@pytest.fixture(scope="module")
def findings(config, fleet, fleet_history):
    start, end = fleet.anchor - pd.Timedelta(days=14), fleet.anchor
    return {svc.name: analyze_service(config, svc, fleet_history[fleet_history["service"] == svc.name], start, end)
            for svc in config.services}


@pytest.mark.parametrize("kind", ["traffic_surge", "cache_loss", "database_slowdown", "memory_leak", "dependency_failure"])
def test_incident_found_with_type_cause_and_remedy(fleet, findings, kind):
    truth = next(t for t in fleet.ground_truth() if t.kind == kind)
    found = [f for f in findings[truth.service] if f.type == truth.expected_type]
    assert len(found) == 1, [(f.type, f.start) for f in findings[truth.service]]
    f = found[0]
    assert f.top_cause == truth.expected_cause
    assert f.remedy == truth.remedy
    assert f.root_causes[0].is_root
    # the episode overlaps the injected window
    assert f.start <= pd.Timestamp(truth.end) and f.end >= pd.Timestamp(truth.start)


def test_one_finding_per_incident_and_none_on_healthy_services(fleet, findings):
    incident_services = {t.service for t in fleet.ground_truth() if t.kind != "saturation"}
    for service, found in findings.items():
        assert len(found) == (1 if service in incident_services else 0), (service, [(f.type, f.start) for f in found])


def test_dependency_failure_is_alarm_only_never_scale(findings):
    f = findings["payments-gateway"][0]
    assert (f.type, f.remedy, f.severity) == ("dependency_failure", "alarm_only", "critical")


def test_cache_loss_ranks_hit_ratio_above_its_consequences(findings):
    causes = [c.signal for c in findings["catalog-api"][0].root_causes]
    assert causes[0] == "cache_hit_ratio"
    assert "database_performance" in causes[1:]
    assert not next(c for c in findings["catalog-api"][0].root_causes if c.signal == "database_performance").is_root


def test_analysis_is_causal_for_a_window(config, fleet, fleet_history):
    """Adding data after the window changes nothing inside it."""
    svc = config.service("orders-api")
    rows = fleet_history[fleet_history["service"] == svc.name]
    start, end = fleet.anchor - pd.Timedelta(days=5), fleet.anchor - pd.Timedelta(days=2)
    cut = rows[rows["ts"] < end]
    assert [(f.type, f.start, f.end) for f in analyze_service(config, svc, cut, start, end)] == \
           [(f.type, f.start, f.end) for f in analyze_service(config, svc, rows, start, end)]


def test_slo_status_against_tier(config, fleet, fleet_history):
    start, end = fleet.anchor - pd.Timedelta(days=14), fleet.anchor
    status = {s.name: slo_status(config, s, fleet_history[fleet_history["service"] == s.name], start, end) for s in config.services}
    assert status["payments-gateway"]["status"] == "breach"  # 2 h at 12 % errors blows a 99.99 % budget
    assert status["payments-gateway"]["error_budget_remaining"] < 0
    assert status["user-profile"]["status"] == "ok"
    assert status["user-profile"]["latency_compliance"] == 1.0
    assert status["checkout-api"]["latency_percentile"] == 99 and status["checkout-api"]["latency_slo_ms"] == 50


def test_predicted_finding_needs_probability_above_threshold(config):
    svc = config.service("search-api")
    capacity = pd.DataFrame([{"service": "search-api", "status": "ok", "metric": "throughput", "run_date": "2026-11-01",
                              "model": "holt_winters", "capacity_limit": 1680.0, "saturation_probability": p,
                              "saturation_at": pd.Timestamp("2026-11-13T13:00Z"), "saturation_at_upper": pd.Timestamp("2026-11-12T13:00Z")}
                             for p in (0.65, 0.95)])
    found = predicted_findings(config, svc, capacity, "2026-11-01T02:00Z")
    assert [(f.type, f.kind, f.confidence) for f in found] == [("cpu_bound", "predicted", 0.95)]


def test_runs_bridge_short_gaps():
    import numpy as np

    mask = np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], bool)
    assert _runs(mask, min_len=3) == [(1, 5), (10, 13)]
