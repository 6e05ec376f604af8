"""Capacity figures from forecasts: saturation on the sample fleet, replicas and cost by hand, scenarios, the accuracy gate."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from include.headroom.forecasting.settings import Scenario
from include.headroom.exceptions import ConfigError
from include.headroom.forecasting.capacity import forecast_metric, load_plan, scenario_factor


@pytest.fixture(scope="module")
def saturating(fleet):
    truth = next(t for t in fleet.ground_truth() if t.kind == "saturation")
    history = fleet.generate(fleet.anchor - pd.Timedelta(days=56), fleet.anchor, services=[truth.service])
    return truth, history


def test_saturation_found_within_six_hours_with_eight_weeks_of_history(config, saturating):
    truth, history = saturating
    svc = config.service(truth.service)
    result = forecast_metric(config, svc, history, "throughput", "2026-11-01")
    cap = result.capacity
    assert cap["status"] == "ok" and cap["model"] == "fourier_trend"
    assert abs(cap["saturation_at"] - pd.Timestamp(truth.saturation_at)) <= pd.Timedelta(hours=6)
    assert cap["saturation_at_upper"] <= cap["saturation_at"]
    assert cap["saturation_probability"] > 0.7 and cap["trusted"]
    assert cap["capacity_limit"] == pytest.approx(truth.capacity_limit)
    scores = json.loads(cap["scores"])
    assert scores[cap["model"]]["mase"] <= scores["seasonal_naive"]["mase"]
    assert scores["data_points"] == 56 * 24 and set(scores["candidates"]) == {"seasonal_naive", *config.forecasting.models, "auto"}
    assert scores["seasonal_periods"] == [24, 168] and scores["level_shifts_at"] == []  # growth that bends is not a level shift
    assert scores["members"] == ["fourier_trend"]  # clearly the best: not diluted by weaker candidates
    # Saturation is ~12.5 days out: the next 7 days (replicas_days) fit within max replicas, the 30-day plan does not
    # and is clipped to [min, max].
    assert cap["max_replicas_enough"] and cap["hours_over_max"] == 0
    assert svc.min_replicas <= cap["replicas_needed_peak"] <= svc.max_replicas
    late = load_plan(config, svc, result.forecast.iloc[7 * 24 :].reset_index(drop=True), svc.max_replicas)
    assert late["max_replicas_enough"] is False and late["hours_over_max"] > 0 and late["replicas_needed_peak"] > svc.max_replicas
    replicas = result.forecast["replicas"]
    assert replicas.min() >= svc.min_replicas and replicas.max() == svc.max_replicas
    assert cap["cost_forecast_month"] > cap["cost_now_month"]  # growing load needs more replica-hours
    assert cap["cost_recommended_month"] >= cap["cost_forecast_month"]  # provisioning for the upper bound costs more


@pytest.mark.parametrize("anchor", ["2026-12-03", "2026-12-05"])
def test_saturation_with_eight_weeks_of_history_is_not_a_day_early(config, anchor):
    """The weekday peaks are not lifted by the weekly season's ripple: a crossing 12.5 days out is found within hours.

    With six weekly harmonics, a weekend step rippled Wednesday's forecast about 1 % high and these anchors' crossings
    came a day early (2026-12-16 13:00 against 2026-12-17 13:10 for the 5th).
    """
    from include.headroom.metrics.sample_fleet import SampleFleet

    fleet = SampleFleet(config, anchor=anchor)
    truth = next(t for t in fleet.ground_truth() if t.kind == "saturation")
    history = fleet.generate(fleet.anchor - pd.Timedelta(days=56), fleet.anchor, services=[truth.service])
    cap = forecast_metric(config, config.service(truth.service), history, "throughput", anchor).capacity
    assert abs(cap["saturation_at"] - pd.Timestamp(truth.saturation_at)) <= pd.Timedelta(hours=2)


def test_saturation_found_with_three_weeks_of_history(config, saturating):
    truth, history = saturating
    svc = config.service(truth.service)
    recent = history[history["ts"] >= history["ts"].max() - pd.Timedelta(days=21)]
    cap = forecast_metric(config, svc, recent, "throughput", "2026-11-01").capacity
    assert abs(cap["saturation_at"] - pd.Timestamp(truth.saturation_at)) <= pd.Timedelta(days=1)


def test_scenarios_move_saturation_and_cost(config, saturating):
    truth, history = saturating
    svc = config.service(truth.service)
    result = forecast_metric(config, svc, history, "throughput", "2026-11-01")
    by_name = {row["scenario"]: row for row in result.scenarios}
    assert set(by_name) == {s.name for s in config.forecasting.scenarios}
    launch = by_name["launch"]  # x2 from two weeks out: saturated on launch day at the latest
    assert launch["saturation_at"] <= pd.Timestamp(truth.saturation_at) + pd.Timedelta(days=1)
    assert launch["cost_forecast_month"] > result.capacity["cost_forecast_month"]
    assert by_name["organic_growth"]["saturation_at"] <= result.capacity["saturation_at"]


def test_load_plan_by_hand(config):
    svc = config.service("search-api")  # 200 req/s per replica at 70 % CPU: 140 req/s; replicas in [2, 12]; 0.10 USD/h
    ds = pd.date_range("2026-11-01", periods=3, freq="1h", tz="UTC")
    fc = pd.DataFrame(
        {"ds": ds, "yhat": [100.0, 700.0, 1800.0], "yhat_lower": [50.0, 600.0, 1600.0], "yhat_upper": [150.0, 1700.0, 2000.0]}
    )
    plan = load_plan(config, svc, fc, current_replicas=4)
    # needed = ceil(y / 140) = [1, 5, 13]; the limit is 2400 * 0.7 = 1680 req/s
    assert plan["replicas_needed_peak"] == 13 and plan["max_replicas_enough"] is False and plan["hours_over_max"] == 1.0
    np.testing.assert_array_equal(plan["_planned"], [2, 5, 12])
    assert plan["saturation_at"] == ds[2] and plan["saturation_at_upper"] == ds[1]
    assert plan["cost_now_month"] == pytest.approx(4 * 0.10 * 730)
    assert plan["cost_forecast_month"] == pytest.approx(round(19 / 3 * 0.10 * 730, 2))
    assert plan["cost_recommended_month"] == pytest.approx(round(26 / 3 * 0.10 * 730, 2))  # upper: [2, 13->12, 15->12]


def test_scenario_factor_by_hand():
    run = pd.Timestamp("2026-11-01", tz="UTC")
    ds = pd.Series(run + pd.to_timedelta([0, 13, 14, 45, 90, 120], unit="D"))
    launch = Scenario(name="launch", multiplier=2.0, start_in_days=14)
    np.testing.assert_allclose(scenario_factor(launch, ds, run), [1, 1, 2, 2, 2, 2])
    dated = Scenario(name="dated", multiplier=2.0, start="2026-12-01")
    np.testing.assert_allclose(scenario_factor(dated, ds, run), [1, 1, 1, 2, 2, 2])
    growth = Scenario(name="growth", growth=0.3, over_days=90)
    np.testing.assert_allclose(scenario_factor(growth, ds, run), [1.0, 1 + 0.3 * 13 / 90, 1 + 0.3 * 14 / 90, 1.15, 1.3, 1.3])
    with pytest.raises(ConfigError, match="'bad': a multiplier needs exactly one of start"):
        Scenario(name="bad", multiplier=2.0)
    with pytest.raises(ConfigError, match="growth needs exactly one of by"):
        Scenario(name="bad", growth=0.2, by="2027-01-01", over_days=30)


def test_untrusted_forecasts_say_why(config, fleet_history):
    strict = dataclasses.replace(config, forecasting=dataclasses.replace(config.forecasting, accuracy_gate_mape=1e-6))
    svc = config.service("checkout-api")
    cap = forecast_metric(strict, svc, fleet_history[fleet_history["service"] == svc.name], "throughput", "d").capacity
    assert cap["status"] == "ok" and cap["trusted"] is False
    assert cap["reason"].startswith("backtest MAPE") and "above the gate 1e-06" in cap["reason"]


def test_auto_choice_is_never_worse_than_naive_on_the_fleet(config, fleet_history):
    for name in ("checkout-api", "session-service", "edge-router", "docs-site"):
        svc = config.service(name)
        for metric in config.forecasting.metrics:
            cap = forecast_metric(config, svc, fleet_history[fleet_history["service"] == name], metric, "d").capacity
            scores = json.loads(cap["scores"])
            assert scores["auto"]["mase"] <= scores["seasonal_naive"]["mase"], (name, metric)
            if metric == "throughput":
                assert pd.isna(cap["saturation_at"])


def test_a_named_model_is_used_as_asked(config, fleet_history):
    svc = config.service("checkout-api")
    result = forecast_metric(
        config, svc, fleet_history[fleet_history["service"] == svc.name], "memory_utilization", "d", model="holt_winters"
    )
    assert result.capacity["model"] == "holt_winters" and set(result.forecast["model"]) == {"holt_winters"}
    assert result.forecast["replicas"].isna().all() and result.scenarios == []
    assert (result.forecast["yhat_lower"] >= 0).all()


def test_short_history_is_reported_not_forecast(config, fleet):
    svc = config.service("docs-site")
    short = fleet.generate(fleet.anchor - pd.Timedelta(days=3), fleet.anchor, services=[svc.name])
    result = forecast_metric(config, svc, short, "throughput", "d")
    assert result.capacity["status"] == "insufficient_history"
    assert "240 needed (10 days)" in result.capacity["reason"]
    assert result.forecast.empty


def test_series_by_metric_matches_resampling_one_metric_at_a_time():
    import numpy as np

    from include.headroom.forecasting.capacity import series_by_metric, to_series

    rng = np.random.default_rng(3)
    ts = pd.date_range("2026-10-01T00:07Z", periods=2000, freq="5min")
    frame = pd.concat([pd.DataFrame({"ts": ts, "metric": m, "value": rng.gamma(2.0, 10.0, len(ts))}) for m in ("throughput", "replicas")],
                      ignore_index=True)
    frame = frame.drop(index=range(300, 420)).reset_index(drop=True)  # a 10-hour hole in throughput: interpolated
    got = series_by_metric(frame, ["throughput", "replicas", "error_rate"], "1h")
    for metric in ("throughput", "replicas"):
        want = to_series(frame, metric, "1h")
        assert got[metric]["ds"].tolist() == want["ds"].tolist()
        np.testing.assert_allclose(got[metric]["y"], want["y"], rtol=1e-12)
    assert got["throughput"]["ds"].iloc[0] == pd.Timestamp("2026-10-01T00:00Z") and len(got["throughput"]) == 167
    assert got["error_rate"].empty


def test_batch_forecast_frame_equals_the_series_frames_and_shared_engine_work_changes_nothing(config, saturating, monkeypatch):
    """``forecast_frame`` is the concatenation of every series' frame; the engine's memo gives the forecasts it gives without."""
    from include.headroom.forecasting import engine
    from include.headroom.forecasting.capacity import forecast_frame, forecast_service

    truth, history = saturating
    svc = config.service(truth.service)
    results = forecast_service(config, svc, history, "2026-11-01")
    done = [r for r in results if r.points]
    assert len(done) >= 2
    batch = forecast_frame(results)
    pd.testing.assert_frame_equal(batch, pd.concat([r.forecast for r in done], ignore_index=True), check_exact=True)
    assert list(batch["metric"].unique()) == [r.capacity["metric"] for r in done]
    assert len(batch) == sum(len(r.forecast) for r in done)
    # Without the memo (every kernel decomposes and smooths on its own) the forecasts are the same.
    monkeypatch.setattr(engine._MEMO, "get", lambda train, key, make: make())
    plain = forecast_frame(forecast_service(config, svc, history, "2026-11-01"))
    for col in ("yhat", "yhat_lower", "yhat_upper"):
        np.testing.assert_allclose(plain[col].to_numpy(), batch[col].to_numpy(), rtol=1e-9, atol=1e-12)
    assert forecast_frame([]).empty
