"""The HPA algorithm (autoscaling/v2 behaviour), scheduled rules with time zones, and the scaling settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, UTC

import pandas as pd
import pytest
import yaml

from include.headroom.exceptions import ConfigError
from include.headroom.scaling.decide import plan_scaling, planned_capacity
from include.headroom.scaling.policy import (
    Behavior,
    PolicyType,
    Recommendation,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    ScheduledRule,
    SelectPolicy,
    rate_limit,
    replica_count,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)
from include.headroom.scaling.settings import parse_scaling, policy_settings

UP = ScalingRules(300, (ScalingPolicy(PolicyType.PERCENT, 100, 60),))
DOWN = ScalingRules(600, (ScalingPolicy(PolicyType.PERCENT, 50, 60),))
GENERAL = Behavior(UP, DOWN)


def test_settings_come_from_scaling_yaml(config):
    s = policy_settings()
    critical = s.behavior("critical")
    assert (critical.scale_up.stabilization_s, critical.scale_up.policies) == (30, (ScalingPolicy(PolicyType.PERCENT, 100.0, 30),))
    assert (critical.scale_down.stabilization_s, critical.scale_down.policies) == (300, (ScalingPolicy(PolicyType.PERCENT, 10.0, 60),))
    assert s.behavior("general").scale_down.stabilization_s == 600
    assert (s.scale_out_cooldown_s, s.scale_in_cooldown_s, s.expiry_s) == (300, 600, 300)
    assert config.scaling.approval_cost_usd_month == 1000 and config.scaling.alarm_error_rate == 0.05


def test_multiple_metrics_take_the_max():
    assert replica_count(4, [(84.0, 70.0), (40.0, 80.0)], 0.1) == 5   # cpu 1.2 -> 5, memory 0.5 -> 2
    assert replica_count(4, [(75.0, 70.0), (60.0, 80.0)], 0.1) == 4   # cpu in tolerance (4), memory 0.75 -> 3: max 4
    with pytest.raises(ValueError, match="target=0"):
        replica_count(4, [(10.0, 0.0)], 0.1)


def test_stabilization_windows():
    now = 10_000.0
    history = [Recommendation(now - 500, 8), Recommendation(now - 200, 3), Recommendation(now - 30, 6)]
    # scale-down: the max of the last 600 s (8) wins over a new recommendation of 2 -> hold at current 8? current is 8
    assert stabilize(now, 8, 2, history, GENERAL) == 8
    # scale-up: the min of the last 300 s (3) caps a new recommendation of 9 -> max(current, 3) = current 5
    assert stabilize(now, 5, 9, history, GENERAL) == 5
    # outside every window the recommendation goes through
    assert stabilize(now, 5, 9, [Recommendation(now - 700, 1)], GENERAL) == 9
    assert stabilize(now, 5, 2, [], GENERAL) == 2


def test_rate_limits_follow_the_period_start():
    now = 1_000.0
    assert scale_up_limit(now, 4, [], UP) == 8                       # +100 %
    assert scale_up_limit(now, 8, [ScaleEvent(now - 30, 4)], UP) == 8  # already doubled from 4 in this period
    assert scale_down_limit(now, 10, [], DOWN) == 5
    assert scale_down_limit(now, 9, [], DOWN) == 4                   # int(9 * 0.5): truncation like the controller
    pods = ScalingRules(0, (ScalingPolicy(PolicyType.PERCENT, 10, 60), ScalingPolicy(PolicyType.PODS, 4, 60)))
    assert scale_up_limit(now, 10, [], pods) == 14                   # Max: the larger change (pods +4 vs ceil(11))
    assert scale_up_limit(now, 10, [], ScalingRules(0, pods.policies, SelectPolicy.MIN)) == 11
    assert scale_up_limit(now, 10, [], ScalingRules(0, pods.policies, SelectPolicy.DISABLED)) == 10
    assert rate_limit(now, 4, 50, 1, 10, [], GENERAL) == 8
    assert rate_limit(now, 4, 50, 1, 6, [], GENERAL) == 6
    assert rate_limit(now, 10, 1, 3, 20, [], GENERAL) == 5
    assert rate_limit(now, 4, 4, 5, 10, [], GENERAL) == 5


def test_critical_tier_differs_from_general(config):
    s = policy_settings()
    now = 0.0
    assert rate_limit(now, 20, 5, 10, 100, [], s.behavior("critical")) == 18   # -10 % per 60 s
    assert rate_limit(now, 20, 5, 1, 100, [], s.behavior("general")) == 10     # -50 % per 60 s


def test_scheduled_rule_in_its_time_zone_across_dst():
    rule = ScheduledRule("biz", ("checkout-api",), "Europe/Berlin", ("mon", "tue", "wed", "thu", "fri"), time(8), time(20), 4)
    # summer (CEST, UTC+2): 06:30 UTC is 08:30 local
    assert rule.active(datetime(2026, 7, 6, 6, 30, tzinfo=UTC))
    assert not rule.active(datetime(2026, 7, 6, 5, 30, tzinfo=UTC))
    # winter (CET, UTC+1): 06:30 UTC is 07:30 local
    assert not rule.active(datetime(2026, 11, 2, 6, 30, tzinfo=UTC))
    assert rule.active(datetime(2026, 11, 2, 7, 30, tzinfo=UTC))
    assert not rule.active(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))  # Sunday
    overnight = ScheduledRule("batch", ("orders-api",), "America/New_York", ("fri",), time(23), time(2), 3)
    assert overnight.active(datetime(2026, 11, 7, 5, 30, tzinfo=UTC))   # Sat 00:30 New York: Friday's window
    assert not overnight.active(datetime(2026, 11, 8, 5, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="must be timezone-aware"):
        rule.active(datetime(2026, 7, 6, 6, 30))


@pytest.mark.parametrize(("change", "match"), [
    ({"timezone": "Mars/Olympus"}, "unknown timezone='Mars/Olympus'"),
    ({"days": ["monday"]}, r"days=\['monday'\] must be a non-empty subset"),
    ({"start": "25:00"}, "'25:00' is not a HH:MM time"),
    ({"services": ["nope"]}, r"names unknown services \['nope'\]"),
])
def test_bad_scheduled_rules_are_named(config, change, match):
    from include.headroom.config import CONFIG_DIR

    raw = yaml.safe_load((CONFIG_DIR / "scaling.yaml").read_text())
    raw["scheduled"] = [{**raw["scheduled"][0], **change}]
    with pytest.raises(ConfigError, match=match):
        replace(config, scaling=parse_scaling(raw))  # the rule's services are checked against the catalog


def _recent(service, cpu, replicas, at, memory=40.0, error_rate=0.001):
    ts = pd.date_range(at - pd.Timedelta(minutes=15), periods=3, freq="5min")
    rows = []
    for metric, value in (("cpu_utilization", cpu), ("memory_utilization", memory), ("error_rate", error_rate), ("replicas", replicas)):
        rows += [{"ts": t, "service": service, "metric": metric, "value": value} for t in ts]
    return pd.DataFrame(rows)


def test_business_hours_floor_scales_out_but_never_in(config):
    svc = config.service("checkout-api")
    monday = pd.Timestamp("2026-11-02T09:00Z")  # 10:00 in Berlin
    up = plan_scaling(config, svc, _recent("checkout-api", 70.0, 3, monday), monday)
    assert (up.rule, up.current_replicas, up.desired_replicas) == ("scheduled_floor", 3, 4)
    assert up.inputs["scheduled_rules"] == ["checkout-business-hours"]
    # low CPU inside business hours: reactive wants fewer, the floor stops the scale-in at 4
    held = plan_scaling(config, svc, _recent("checkout-api", 20.0, 6, monday), monday)
    assert held.desired_replicas == 4 and "scale-in stops at the scheduled_floor of 4" in held.reason


def test_stale_metrics_are_refused(config):
    svc = config.service("orders-api")
    at = pd.Timestamp("2026-11-01T12:00Z")
    old = plan_scaling(config, svc, _recent("orders-api", 95.0, 4, at - pd.Timedelta(hours=2)), at)
    assert (old.action, old.rule, old.desired_replicas) == ("skip", "stale_data", 4)
    assert "older than 1800 s" in old.reason


def test_cooldown_after_a_recent_change(config):
    svc = config.service("orders-api")
    at = pd.Timestamp("2026-11-01T12:00Z")
    recent = _recent("orders-api", 95.0, 4, at)
    cooling = plan_scaling(config, svc, recent, at, events=[ScaleEvent(at.timestamp() - 120, 1)])
    assert (cooling.action, cooling.rule) == ("none", "cooldown") and "180 s left" in cooling.reason
    assert plan_scaling(config, svc, recent, at, events=[ScaleEvent(at.timestamp() - 400, 1)]).action == "scale"


def test_planned_capacity_for_24_hours(config):
    svc = config.service("orders-api")
    capacity = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": True}])
    start = pd.Timestamp("2026-11-02T00:00Z")  # Monday
    ds = pd.date_range(start, periods=30, freq="1h")
    forecast = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": ds,
                             "yhat": [500.0 if 8 <= t.hour < 18 else 100.0 for t in ds]})
    plan = planned_capacity(config, svc, start, capacity, forecast)
    assert len(plan) == 24 and plan[0]["at"] == "2026-11-02T00:00:00+00:00"
    by_hour = {pd.Timestamp(p["at"]).hour: p for p in plan}
    assert by_hour[10]["predictive"] == 4 and by_hour[10]["replicas"] == 4          # ceil(500 / (180 x 0.75))
    assert by_hour[6]["scheduled"] == 3 and by_hour[6]["rules"] == ["orders-nightly-batch"]  # 01:00 New York
    assert by_hour[3]["replicas"] == svc.min_replicas == 2
    untrusted = planned_capacity(config, svc, start, capacity.assign(trusted=False), forecast)
    assert all(p["predictive"] is None for p in untrusted)
