"""Accuracy over time (earlier forecasts vs actuals) and the planning-horizon bands on two years of daily history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.accuracy import horizon_accuracy, score_past_forecasts


def test_earlier_forecasts_are_scored_by_days_ahead_by_hand():
    run = pd.Timestamp("2026-11-01T02:00Z")
    ds = pd.date_range(run + pd.Timedelta(hours=1), periods=48, freq="1h")
    forecasts = pd.DataFrame({"run_date": "2026-11-01", "service": "a", "metric": "throughput", "model": "fourier_trend",
                              "ds": ds, "yhat": 100.0, "yhat_lower": 90.0, "yhat_upper": 110.0})
    # Actuals arrived for the first 30 hours only: day 1 is 24 points at 105 (inside), day 2 six points at 120 (outside).
    actual = np.r_[np.full(24, 105.0), np.full(6, 120.0)]
    actuals = pd.DataFrame({"service": "a", "metric": "throughput", "ds": ds[:30], "y": actual})
    scored = score_past_forecasts(forecasts, actuals, run + pd.Timedelta(days=2)).set_index("horizon_days")
    assert list(scored.index) == [1, 2]
    assert scored.loc[1, "points"] == 24 and scored.loc[2, "points"] == 6
    assert scored.loc[1, "mae"] == pytest.approx(5.0) and scored.loc[2, "mae"] == pytest.approx(20.0)
    assert scored.loc[1, "mape"] == pytest.approx(5 / 105) and scored.loc[2, "mape"] == pytest.approx(20 / 120)
    assert scored.loc[1, "coverage"] == 1.0 and scored.loc[2, "coverage"] == 0.0
    assert set(scored["model"]) == {"fourier_trend"}
    assert score_past_forecasts(forecasts, actuals.iloc[0:0], run).empty


def test_daily_history_is_two_years_reproducible_and_matches_the_load_model(fleet, config):
    daily = fleet.daily_history(730, services=["checkout-api", "search-api"])
    assert len(daily) == 2 * 730 and set(daily["metric"]) == {"throughput"}
    first = daily[daily["service"] == "checkout-api"]
    assert first["ds"].iloc[0] == fleet.anchor - pd.Timedelta(days=730) and first["ds"].iloc[-1] == fleet.anchor - pd.Timedelta(days=1)
    again = fleet.daily_history(30, services=["checkout-api"])
    np.testing.assert_allclose(again["y"].to_numpy(), first["y"].to_numpy()[-30:])  # any span alone gives the same days
    # A day's value is the mean of the hourly load model within the noise (2 % sd per day).
    svc = config.service("checkout-api")
    hours = pd.date_range(fleet.anchor - pd.Timedelta(days=1), fleet.anchor, freq="1h", inclusive="left")
    assert first["y"].iloc[-1] == pytest.approx(fleet.expected_load(svc, hours).mean(), rel=0.08)


def test_planning_horizons_meet_their_bands_on_the_sample_fleet(fleet, config):
    daily = fleet.daily_history(730, services=["checkout-api", "search-api", "edge-router"])
    for service, frame in daily.groupby("service"):
        results = {h.horizon: h for h in horizon_accuracy(frame[["ds", "y"]], config.forecasting.horizons)}
        assert set(results) == {"short", "medium", "long"}
        assert results["long"].resample == "7D" and results["medium"].days == 90
        for h in results.values():
            assert h.meets_band, (service, h.to_dict())


def test_horizon_accuracy_needs_history_as_long_as_the_horizon(fleet, config):
    daily = fleet.daily_history(400, services=["checkout-api"])
    with pytest.raises(ForecastError, match="horizon 'long': 58 7D points cannot hold out 52"):
        horizon_accuracy(daily[["ds", "y"]], config.forecasting.horizons)
