"""Scaling decisions: the HPA rule, the error-rate alarm, bounds, and the predictive floor."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.scaling.decide import hpa_desired, plan_scaling

AS_OF = pd.Timestamp("2026-11-01T12:00Z")


def _recent(cpu, memory=40.0, error_rate=0.001, replicas=4):
    ts = pd.date_range(AS_OF - pd.Timedelta(minutes=15), periods=3, freq="5min")
    rows = []
    for metric, value in (("cpu_utilization", cpu), ("memory_utilization", memory), ("error_rate", error_rate), ("replicas", replicas)):
        rows += [{"ts": t, "service": "orders-api", "metric": metric, "value": value} for t in ts]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("current", "metric", "target", "expected"), [
    (4, 70.0, 70.0, 4),     # on target
    (4, 76.0, 70.0, 4),     # inside the 10 % tolerance
    (4, 84.0, 70.0, 5),     # ceil(4 * 1.2) = 5
    (4, 35.0, 70.0, 2),     # half the load, half the pods
    (3, 99.0, 50.0, 6),     # ceil(3 * 1.98)
])
def test_hpa_formula(current, metric, target, expected):
    assert hpa_desired(current, metric, target, tolerance=0.1) == expected


def test_high_cpu_scales_out_within_rate_limit_and_bounds(config):
    svc = config.service("orders-api")  # general profile: at most +100 % per period, max 12
    decision = plan_scaling(config, svc, _recent(cpu=95.0, replicas=4), AS_OF)
    assert (decision.action, decision.rule) == ("scale", "hpa_cpu")
    assert decision.desired_replicas == 6  # ceil(4 * 95 / 70) = 6
    assert decision.cost_change_month == pytest.approx(2 * 0.10 * 730)
    huge = plan_scaling(config, svc, _recent(cpu=100.0, replicas=10), AS_OF)
    assert huge.desired_replicas == svc.max_replicas == 12


def test_live_saturated_cpu_scales_out_to_what_the_measured_throughput_needs(config):
    svc = config.service("orders-api")  # 180 req/s per replica at a 70 % target, +100 % per period, max step 6
    busy = pd.concat([_recent(cpu=97.0, replicas=4), _recent(cpu=97.0, replicas=4).query("metric == 'replicas'").assign(
        metric="throughput", value=1000.0)])
    decision = plan_scaling(config, svc, busy, AS_OF)
    # the CPU rule alone: ceil(4 * 97 / 70) = 6; 1000 req/s need ceil(1000 / 126) = 8
    assert (decision.action, decision.rule, decision.desired_replicas, decision.recommendation) == ("scale", "saturated_load", 8, 8)
    assert "cpu saturated (>= 95%)" in decision.reason
    assert (decision.inputs["throughput"], decision.inputs["cpu_utilization"]) == (1000.0, 97.0)  # the audit shows what it read
    hot = busy.assign(value=busy["value"].where(busy["metric"] != "cpu_utilization", 90.0))
    below = plan_scaling(config, svc, hot, AS_OF)  # 90 % is not saturated: the CPU rule's ceil(4 * 90 / 70) = 6
    assert (below.rule, below.desired_replicas) == ("hpa_cpu", 6)


def test_scale_in_is_rate_limited(config):
    svc = config.service("orders-api")  # at most -50 % per period
    decision = plan_scaling(config, svc, _recent(cpu=10.0, replicas=10), AS_OF)
    assert decision.desired_replicas == 5


def test_error_rate_above_five_percent_alarms_instead_of_scaling(config):
    decision = plan_scaling(config, config.service("orders-api"), _recent(cpu=95.0, error_rate=0.12), AS_OF)
    assert (decision.action, decision.rule) == ("alarm", "error_rate_alarm")
    assert decision.desired_replicas == decision.current_replicas
    assert "failing dependency" in decision.reason


def test_forecast_raises_the_floor_but_never_lowers(config):
    svc = config.service("orders-api")
    capacity = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": True}])
    ds = pd.date_range(AS_OF, periods=4, freq="1h")
    busy = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": ds, "yhat": 1200.0})
    decision = plan_scaling(config, svc, _recent(cpu=70.0, replicas=4), AS_OF, capacity=capacity, forecast=busy)
    assert decision.rule == "predictive_floor"
    assert decision.desired_replicas == 8  # ceil(1200 / (180 * 0.7)) = 10, capped by +100 % per period
    quiet = busy.assign(yhat=10.0)
    steady = plan_scaling(config, svc, _recent(cpu=70.0, replicas=4), AS_OF, capacity=capacity, forecast=quiet)
    assert (steady.action, steady.desired_replicas) == ("none", 4)


def test_untrusted_forecast_is_ignored(config):
    svc = config.service("orders-api")
    capacity = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": False}])
    busy = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": pd.date_range(AS_OF, periods=4, freq="1h"), "yhat": 1200.0})
    assert plan_scaling(config, svc, _recent(cpu=70.0), AS_OF, capacity=capacity, forecast=busy).action == "none"


def test_same_inputs_same_decision(config):
    svc = config.service("checkout-api")
    a = plan_scaling(config, svc, _recent(cpu=90.0), AS_OF)
    b = plan_scaling(config, svc, _recent(cpu=90.0), AS_OF)
    assert a == b and a.decision_id == b.decision_id


def test_big_jumps_need_approval(config):
    decision = plan_scaling(config, config.service("orders-api"), _recent(cpu=99.0, replicas=4), AS_OF)
    assert (decision.current_replicas, decision.desired_replicas) == (4, 6)
    assert decision.impact == "high" and decision.requires_approval
    small = plan_scaling(config, config.service("orders-api"), _recent(cpu=84.0, replicas=4), AS_OF)
    assert (small.desired_replicas, small.impact, small.requires_approval) == (5, "medium", False)


def test_live_decisions_go_through_the_kernel_with_controller_parity(config):
    svc = config.service("orders-api")  # [2, 12], step limit 6
    first = plan_scaling(config, svc, _recent(cpu=10.0, replicas=10), AS_OF, first_seen=True)
    assert (first.action, first.rule, first.desired_replicas, first.seed) == ("none", "stabilization", 10, 10)
    far = plan_scaling(config, svc, _recent(cpu=50.0, replicas=30), AS_OF)
    assert (far.action, far.rule, far.desired_replicas, far.planned_replicas) == ("alarm", "out_of_bounds", 30, 12)
    assert far.inputs["planned_move"] == 12 and far.recommendation is None
    near = plan_scaling(config, svc, _recent(cpu=10.0, replicas=14), AS_OF)
    assert (near.action, near.rule, near.desired_replicas) == ("scale", "out_of_bounds", 12)


def test_floor_reads_the_forecasts_upper_quantile_then_its_plan(config):
    svc = config.service("orders-api")
    capacity = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": True}])
    ds = pd.date_range(AS_OF, periods=4, freq="1h")
    forecast = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": ds, "yhat": 500.0, "yhat_upper": 700.0,
                             "replicas": 4.0})
    d = plan_scaling(config, svc, _recent(cpu=70.0, replicas=4), AS_OF, capacity=capacity, forecast=forecast)
    assert d.inputs["predictive_floor"] == 6  # ceil(700 / (180 x 0.75)) = 6, not the median plan of 4
    plan_only = forecast.drop(columns=["yhat_upper"])
    d = plan_scaling(config, svc, _recent(cpu=70.0, replicas=4), AS_OF, capacity=capacity, forecast=plan_only)
    assert d.inputs["predictive_floor"] == 4


def _accuracy(run_date, mape, coverage, service="orders-api", horizon_days=1):
    return {"run_date": run_date, "service": service, "metric": "throughput", "model": "fourier_trend", "horizon_days": horizon_days,
            "points": 24, "mae": 1.0, "mape": mape, "coverage": coverage}


def test_live_floor_is_trusted_by_measured_accuracy_under_the_replay_rule(config):
    """Trust comes from the newest first-day score of forecast_accuracy (MAPE <= 1 - 0.8, or interval coverage >= 0.8),
    not from the backtest flag; the backtest decides only until a forecast has been scored."""
    svc = config.service("orders-api")
    ds = pd.date_range(AS_OF, periods=4, freq="1h")
    forecast = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": ds, "yhat": 500.0, "yhat_upper": 700.0})
    backtest_yes = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": True}])
    backtest_no = backtest_yes.assign(trusted=False)

    def floor(capacity, rows):
        acc = pd.DataFrame(rows) if rows is not None else None
        return plan_scaling(config, svc, _recent(cpu=70.0, replicas=4), AS_OF, capacity=capacity, forecast=forecast,
                            accuracy=acc).inputs

    # measured badly (MAPE 30 %, coverage 60 %): no floor although the backtest trusted the model
    bad = floor(backtest_yes, [_accuracy("2026-05-31", 0.30, 0.60)])
    assert bad["predictive_floor"] is None
    assert "not trusted (run 2026-05-31: MAPE 30.0%, interval coverage 60%)" in bad["predictive_reason"]
    # noisy median (MAPE 30 %) whose interval covered 85 %: trusted by coverage although the backtest was not
    noisy = floor(backtest_no, [_accuracy("2026-05-31", 0.30, 0.85)])
    assert noisy["predictive_floor"] == 6  # ceil(700 / (180 x 0.75))
    # accurate median (MAPE 10 %), no interval measured: trusted by MAPE
    assert floor(backtest_no, [_accuracy("2026-05-31", 0.10, float("nan"))])["predictive_floor"] == 6
    # the newest run decides; other services' and later days' scores are not read
    rows = [_accuracy("2026-05-30", 0.05, 1.0), _accuracy("2026-05-31", 0.30, 0.50), _accuracy("2026-05-31", 0.01, 1.0, "search-api"),
            _accuracy("2026-05-31", 0.01, 1.0, horizon_days=2)]
    assert floor(backtest_yes, rows)["predictive_floor"] is None
    # nothing scored yet: the backtest flag
    assert floor(backtest_yes, None)["predictive_floor"] == 6
    assert "by its backtest" in floor(backtest_no, [_accuracy("2026-05-31", 0.01, 1.0, "search-api")])["predictive_reason"]


def test_one_actuation_delay_gives_the_live_and_the_replay_lead_time(config):
    from dataclasses import replace

    from include.headroom.scaling.decide import predictive_floor
    from include.headroom.scaling.replay import ReplaySettings
    from include.headroom.scaling.settings import policy_settings

    settings = policy_settings()
    assert (settings.actuation_delay_s, settings.schedule_period_s, settings.replay_step_s) == (300, 300, 300)
    assert settings.lead_time_s == ReplaySettings.from_settings(settings).lead_time_s == 600
    slower = replace(settings, actuation_delay_s=1500)
    assert (slower.lead_time_s, ReplaySettings.from_settings(slower).lead_time_s) == (1800, 1800)
    # the live floor reads the forecast at as_of + lead time: 600 s -> the 12:15 row, 1800 s -> the 12:30 row
    svc = config.service("orders-api")
    ds = pd.date_range(AS_OF, periods=4, freq="15min")
    forecast = pd.DataFrame({"service": "orders-api", "metric": "throughput", "ds": ds, "yhat_upper": [100.0, 400.0, 1000.0, 1000.0]})
    capacity = pd.DataFrame([{"service": "orders-api", "metric": "throughput", "trusted": True}])
    assert predictive_floor(config, svc, AS_OF, capacity, forecast, settings)[0] == 3  # ceil(400 / (180 x 0.75))
    assert predictive_floor(config, svc, AS_OF, capacity, forecast, slower)[0] == 8  # ceil(1000 / 135)


@pytest.mark.parametrize(("mape", "coverage", "trusted"), [
    (0.2, None, True), (0.21, None, False), (0.5, 0.8, True), (0.5, 0.79, False), (float("nan"), 0.9, True),
    (float("nan"), float("nan"), False), (None, None, False),
])
def test_the_trust_rule(mape, coverage, trusted):
    from include.headroom.scaling.policy import forecast_trusted
    from include.headroom.scaling.settings import policy_settings

    assert policy_settings().forecast_trusted(mape, coverage) is trusted
    assert forecast_trusted(mape, coverage, 0.2, None) is (mape is not None and mape == mape and mape <= 0.2)  # no coverage rule


def test_a_floor_holds_the_upper_forecast_at_the_trusted_cpu_target_unless_set():
    import yaml

    from include.headroom.configfile import CONFIG_DIR
    from include.headroom.scaling.settings import parse_scaling

    raw = yaml.safe_load((CONFIG_DIR / "scaling.yaml").read_text())
    assert parse_scaling(raw).floor_utilization == 0.75  # trusted_cpu_target 75
    raw["predictive_floor"]["utilization"] = 0.6
    assert parse_scaling(raw).floor_utilization == 0.6
    del raw["predictive_floor"]["utilization"], raw["predictive_floor"]["trusted_cpu_target"]
    assert parse_scaling(raw).floor_utilization is None  # the tier's CPU target
