"""Forecast models, accuracy metrics and capacity figures, checked against known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.capacity import forecast_metric
from include.headroom.forecasting.evaluation import holdout_scores, mae, mape, mase, smape
from include.headroom.forecasting.models import MODELS, HoltWinters, SeasonalNaive, get_model


def _series(days=28, trend=0.5, noise=0.0, seed=1):
    ds = pd.date_range("2026-09-01", periods=days * 24, freq="1h", tz="UTC")
    t = np.arange(len(ds))
    rng = np.random.default_rng(seed)
    y = 100 + trend * t / 24 + 20 * np.sin(2 * np.pi * t / 24) + noise * rng.standard_normal(len(ds))
    return pd.DataFrame({"ds": ds, "y": y})


def test_metrics_against_hand_computed_values():
    y, yhat = np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 33.0])
    assert mae(y, yhat) == pytest.approx(7 / 3)
    assert mape(y, yhat) == pytest.approx((0.2 + 0.1 + 0.1) / 3)
    assert smape(y, yhat) == pytest.approx(np.mean([4 / 22, 4 / 38, 6 / 63]))
    insample = np.array([1.0, 2.0, 4.0, 7.0])  # naive (season 1) in-sample MAE = (1 + 2 + 3) / 3 = 2
    assert mase(y, yhat, insample, season=1) == pytest.approx((7 / 3) / 2)


def test_seasonal_naive_repeats_the_last_season():
    df = _series(days=3, trend=0.0)
    fc = SeasonalNaive(season=24).fit(df).forecast(48)
    np.testing.assert_allclose(fc["yhat"].to_numpy(), np.tile(df["y"].to_numpy()[-24:], 2))
    assert fc["ds"].iloc[0] == df["ds"].iloc[-1] + pd.Timedelta(hours=1)


def test_holt_winters_follows_sine_with_trend():
    df = _series(days=28, trend=0.5, noise=1.0)
    train, test = df.iloc[:-72], df.iloc[-72:]
    fc = HoltWinters(season=24).fit(train).forecast(72, alpha=0.2)
    assert mae(test["y"].to_numpy(), fc["yhat"].to_numpy()) < 2.0
    coverage = np.mean((test["y"].to_numpy() >= fc["yhat_lower"]) & (test["y"].to_numpy() <= fc["yhat_upper"]))
    assert coverage > 0.7


def test_holt_winters_beats_naive_on_a_trend():
    df = _series(days=28, trend=3.0, noise=1.0)
    hw = holdout_scores(HoltWinters(season=24), df, 72)
    naive = holdout_scores(SeasonalNaive(season=24), df, 72)
    assert hw["mase"] < naive["mase"]


def test_step_change_is_followed():
    df = _series(days=21, trend=0.0, noise=0.5)
    df.loc[df.index[-5 * 24 :], "y"] += 50  # a new level five days before the end
    fc = HoltWinters(season=24).fit(df).forecast(24)
    assert abs(fc["yhat"].mean() - (df["y"].iloc[-24:].mean())) < 5


def test_input_errors_say_how_to_fix():
    with pytest.raises(ForecastError, match="at least 48 are needed"):
        SeasonalNaive(season=24).fit(_series(days=1))
    irregular = _series(days=3).drop(index=[5, 6])
    with pytest.raises(ForecastError, match="not regular"):
        SeasonalNaive(season=24).fit(irregular)
    bad = _series(days=3).astype({"y": object})
    bad.loc[3, "y"] = "n/a"
    with pytest.raises(ForecastError, match="1 missing or non-numeric"):
        SeasonalNaive(season=24).fit(bad)
    with pytest.raises(ForecastError, match="unknown model 'magic'"):
        get_model("magic", 24)
    assert set(MODELS) == {"seasonal_naive", "holt_winters"}


def test_saturation_found_within_a_day_with_eight_weeks_of_history(config, fleet):
    truth = next(t for t in fleet.ground_truth() if t.kind == "saturation")
    svc = config.service(truth.service)
    history = fleet.generate(fleet.anchor - pd.Timedelta(days=56), fleet.anchor, services=[svc.name])
    result = forecast_metric(config, svc, history, "throughput", "2026-11-01")
    cap = result.capacity
    assert abs(cap["saturation_at"] - pd.Timestamp(truth.saturation_at)) <= pd.Timedelta(days=1)
    assert cap["saturation_probability"] > 0.7 and cap["trusted"]
    assert not cap["max_replicas_enough"] or cap["replicas_needed_peak"] <= svc.max_replicas
    scores = json.loads(cap["scores"])
    assert scores[cap["model"]]["mase"] <= scores["seasonal_naive"]["mase"]
    assert cap["cost_forecast_month"] > cap["cost_now_month"]  # growing load needs more replica-hours


def test_auto_choice_is_never_worse_than_naive(config, fleet_history):
    for name in ("checkout-api", "session-service", "edge-router"):
        svc = config.service(name)
        cap = forecast_metric(config, svc, fleet_history[fleet_history["service"] == name], "throughput", "d").capacity
        scores = json.loads(cap["scores"])
        assert scores[cap["model"]]["mae"] <= scores["seasonal_naive"]["mae"]
        assert pd.isna(cap["saturation_at"])


def test_short_history_is_reported_not_forecast(config, fleet):
    svc = config.service("docs-site")
    short = fleet.generate(fleet.anchor - pd.Timedelta(days=3), fleet.anchor, services=[svc.name])
    result = forecast_metric(config, svc, short, "throughput", "d")
    assert result.capacity["status"] == "insufficient_history"
    assert "240 needed (10 days)" in result.capacity["reason"]
    assert result.forecast.empty
