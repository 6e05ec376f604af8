"""The sample fleet: deterministic, realistic, and with its incidents' ground truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from include.headroom.metrics.sample_fleet import METRIC_UNITS, SampleFleet, load_anchor, load_ground_truth


def test_same_seed_and_anchor_give_identical_data(config, fleet):
    again = SampleFleet(config, anchor=fleet.anchor)
    a = fleet.generate("2026-10-20T00:00Z", "2026-10-21T00:00Z")
    b = again.generate("2026-10-20T00:00Z", "2026-10-21T00:00Z")
    pd.testing.assert_frame_equal(a, b)


def test_a_slice_equals_the_same_rows_of_a_longer_range(fleet):
    whole = fleet.generate("2026-10-18T00:00Z", "2026-10-22T00:00Z")
    part = fleet.generate("2026-10-20T10:00Z", "2026-10-20T13:00Z")
    cut = whole[(whole["ts"] >= "2026-10-20T10:00Z") & (whole["ts"] < "2026-10-20T13:00Z")]
    key = ["service", "metric", "ts"]
    pd.testing.assert_frame_equal(part.sort_values(key).reset_index(drop=True), cut.sort_values(key).reset_index(drop=True))


def test_shape_covers_catalog_tiers_and_metrics(config, fleet_history):
    assert fleet_history["service"].nunique() == len(config.services) >= 12
    assert fleet_history["tier"].nunique() == 5
    assert set(fleet_history["metric"]) == set(METRIC_UNITS)
    per_series = fleet_history.groupby(["service", "metric"]).size()
    assert (per_series == 21 * 288).all()
    assert (fleet_history["ts"].dt.minute % 5 == 0).all()


def _wide(history, service):
    return history[history["service"] == service].pivot_table(index="ts", columns="metric", values="value")


def test_traffic_has_daily_and_weekly_seasons(fleet_history):
    load = _wide(fleet_history, "user-profile")["throughput"]
    by_hour = load.groupby(load.index.hour).mean()
    assert by_hour.idxmax() in range(12, 17) and by_hour.idxmin() in range(0, 5)
    assert by_hour.max() / by_hour.min() > 2.0
    weekend = load[load.index.dayofweek >= 5].mean()
    weekday = load[load.index.dayofweek < 5].mean()
    assert 0.7 < weekend / weekday < 0.85


def test_latency_rises_nonlinearly_with_utilization(fleet_history):
    w = _wide(fleet_history, "checkout-api")
    util = w["cpu_utilization"]
    low, high = w["response_time"][util < 50].median(), w["response_time"][util > 90].median()
    mid = w["response_time"][(util > 60) & (util < 70)].median()
    assert high > 2.5 * low
    assert (high - mid) > 2 * (mid - low)  # convex: the last stretch costs most


def test_replicas_follow_load_within_catalog_bounds(config, fleet_history):
    for svc in config.services:
        w = _wide(fleet_history, svc.name)
        assert w["replicas"].min() >= svc.min_replicas and w["replicas"].max() <= svc.max_replicas
        assert np.corrcoef(w["replicas"], w["throughput"])[0, 1] > 0.5 or w["replicas"].nunique() == 1


def test_incidents_leave_their_marks(fleet, fleet_history):
    truth = {(t.kind, t.service): t for t in fleet.ground_truth()}
    assert {kind for kind, _ in truth} == {
        "traffic_surge",
        "cache_loss",
        "database_slowdown",
        "memory_leak",
        "dependency_failure",
        "saturation",
    }

    def during(kind, service, metric):
        t = truth[(kind, service)]
        s = _wide(fleet_history, service)[metric]
        return s[(s.index >= t.start) & (s.index < t.end)]

    assert during("cache_loss", "catalog-api", "cache_hit_ratio").min() < 0.3
    assert during("dependency_failure", "payments-gateway", "error_rate").mean() > 0.1
    assert (
        during("database_slowdown", "orders-api", "database_performance").median()
        > 4 * _wide(fleet_history, "orders-api")["database_performance"].median()
    )
    # cross-service: the shared database slows both its callers; the failing payments-gateway fails its caller
    for caller in ("catalog-api", "user-profile"):
        slow = during("database_slowdown", caller, "database_performance").median()
        assert slow > 4 * _wide(fleet_history, caller)["database_performance"].median()
        assert truth[("database_slowdown", caller)].root_cause == "postgres-main"
    assert during("dependency_failure", "checkout-api", "error_rate").mean() > 0.06
    assert truth[("dependency_failure", "checkout-api")].root_cause == "payments-gateway"
    assert truth[("database_slowdown", "orders-api")].root_cause == "postgres-orders"
    leak = during("memory_leak", "session-service", "memory_utilization")
    assert leak.iloc[-12:].mean() - leak.iloc[:12].mean() > 30
    assert during("traffic_surge", "checkout-api", "cpu_utilization").max() > 90


def test_saturation_ground_truth_is_after_the_anchor(config, fleet):
    sat = next(t for t in fleet.ground_truth() if t.kind == "saturation")
    when = pd.Timestamp(sat.saturation_at)
    assert fleet.anchor + pd.Timedelta(days=10) < when < fleet.anchor + pd.Timedelta(days=15)
    svc = config.service(sat.service)
    assert sat.capacity_limit == pytest.approx(svc.max_replicas * svc.capacity_per_replica_rps * 0.7)
    assert fleet.expected_load(svc, pd.DatetimeIndex([when]))[0] >= sat.capacity_limit


def test_write_keeps_ground_truth_beside_the_data(tmp_path, config):
    fleet = SampleFleet(config, anchor="2026-11-01")
    summary = fleet.write(tmp_path, days=2)
    assert summary["rows"] == 2 * 288 * len(config.services) * len(METRIC_UNITS)
    assert sorted(p.parent.name for p in tmp_path.glob("metrics/*/data.parquet")) == ["date=2026-10-30", "date=2026-10-31"]
    assert load_anchor(tmp_path) == pd.Timestamp("2026-11-01", tz="UTC")
    truths = load_ground_truth(tmp_path)
    assert {t.expected_type for t in truths} >= {"cache_bound", "dependency_failure", "memory_leak", "database_bound", "cpu_bound"}
    assert json.loads((tmp_path / "fleet.json").read_text())["seed"] == config.sample_fleet.seed
