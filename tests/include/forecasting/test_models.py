"""Forecast models against known answers: sine plus trend, step changes, the data contract and input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import holdout_scores, mae
from include.headroom.forecasting.models import (
    MODELS,
    FourierTrend,
    HoltWinters,
    SeasonalNaive,
    SeasonalNaiveWeekly,
    fit_fourier_many,
    get_model,
)


def _series(days=28, trend=0.5, noise=0.0, seed=1, per_day=24, amplitude=20.0):
    step = pd.Timedelta(days=1) / per_day
    ds = pd.date_range("2026-09-01", periods=days * per_day, freq=step, tz="UTC")
    t = np.arange(len(ds))
    rng = np.random.default_rng(seed)
    y = 100 + trend * t / per_day + amplitude * np.sin(2 * np.pi * t / per_day) + noise * rng.standard_normal(len(ds))
    return pd.DataFrame({"ds": ds, "y": y})


def _coverage(y, fc):
    return float(np.mean((y >= fc["yhat_lower"].to_numpy()) & (y <= fc["yhat_upper"].to_numpy())))


def test_registry_holds_every_model_and_names_unknown_ones():
    assert set(MODELS) == {"seasonal_naive", "seasonal_naive_weekly", "fourier_trend", "ets", "theta", "mstl", "arima", "holt_winters",
                           "sarimax", "prophet"}
    for name, cls in MODELS.items():
        assert cls.name == name and cls.description
    with pytest.raises(ForecastError, match=r"unknown model 'magic'; models are \["):
        get_model("magic", 24)


def test_seasonal_naive_repeats_the_last_day_and_week():
    df = _series(days=14, trend=1.0, noise=1.0)
    fc = SeasonalNaive(season=24).fit(df).forecast(48)
    np.testing.assert_allclose(fc["yhat"].to_numpy(), np.tile(df["y"].to_numpy()[-24:], 2))
    assert fc["ds"].iloc[0] == df["ds"].iloc[-1] + pd.Timedelta(hours=1)
    weekly = SeasonalNaiveWeekly(season=24).fit(df).forecast(200)
    np.testing.assert_allclose(weekly["yhat"].to_numpy()[:168], df["y"].to_numpy()[-168:])
    np.testing.assert_allclose(weekly["yhat"].to_numpy()[168:], df["y"].to_numpy()[-168:-136])


def test_fourier_trend_forecasts_sine_with_trend_within_noise():
    # y = 100 + 0.5/day + 20 sin(daily), noise sd 1: a 3-day forecast is within 1.0 MAE (noise alone gives ~0.8).
    df = _series(days=28, trend=0.5, noise=1.0)
    train, test = df.iloc[:-72], df.iloc[-72:]
    fc = FourierTrend(season=24).fit(train).forecast(72, alpha=0.2)
    assert mae(test["y"].to_numpy(), fc["yhat"].to_numpy()) < 1.0
    assert 0.7 <= _coverage(test["y"].to_numpy(), fc) <= 0.99
    assert (fc["yhat_lower"] < fc["yhat"]).all() and (fc["yhat"] < fc["yhat_upper"]).all()


def test_fourier_trend_is_exact_on_a_noise_free_sine_with_trend():
    df = _series(days=21, trend=2.0, noise=0.0, per_day=96)  # 15-minute steps
    train, test = df.iloc[:-96], df.iloc[-96:]
    fc = FourierTrend(season=96).fit(train).forecast(96)
    assert mae(test["y"].to_numpy(), fc["yhat"].to_numpy()) < 0.05


def test_holt_winters_follows_sine_with_trend():
    df = _series(days=28, trend=0.5, noise=1.0)
    train, test = df.iloc[:-72], df.iloc[-72:]
    fc = HoltWinters(season=24).fit(train).forecast(72, alpha=0.2)
    assert mae(test["y"].to_numpy(), fc["yhat"].to_numpy()) < 2.0
    assert _coverage(test["y"].to_numpy(), fc) > 0.7


@pytest.mark.parametrize("name", ["fourier_trend", "holt_winters"])
def test_models_beat_naive_on_a_trend(name):
    df = _series(days=28, trend=3.0, noise=1.0)
    model = holdout_scores(get_model(name, 24), df, 72)
    naive = holdout_scores(SeasonalNaive(season=24), df, 72)
    assert model["mase"] < naive["mase"]


def test_step_change_is_followed_by_holt_winters_and_auto():
    # +50 five days before the end on a level of 100: the next day's forecast is at the new level within 5.
    from include.headroom.forecasting.evaluation import BacktestSpec, select_model

    df = _series(days=21, trend=0.0, noise=0.5)
    df.loc[df.index[-5 * 24 :], "y"] += 50
    new_level = df["y"].iloc[-24:].mean()
    fc = HoltWinters(season=24).fit(df).forecast(24)
    assert abs(fc["yhat"].mean() - new_level) < 5
    # A trend model reads the step as a slope and overshoots; the backtests see it and auto does not pick it.
    selection = select_model(df, ["seasonal_naive_weekly", "fourier_trend"], 24, BacktestSpec(initial=7 * 24, period=24, horizon=72))
    assert selection.chosen == "seasonal_naive"
    fc = get_model(selection.chosen, 24).fit(df).forecast(24)
    assert abs(fc["yhat"].mean() - new_level) < 5


def test_fit_fourier_many_matches_one_by_one_fits():
    frames = [_series(days=21, trend=t, noise=1.0, seed=s) for s, t in ((1, 0.5), (2, 2.0), (3, -1.0))]
    values = np.vstack([f["y"].to_numpy() for f in frames])
    many = fit_fourier_many(values, pd.Timedelta(hours=1))
    paths = many.predict(48)
    for i, frame in enumerate(frames):
        single = FourierTrend(season=24).fit(frame).forecast(48)["yhat"].to_numpy()
        expected = np.exp(paths[i]) if many.log_scale[i] else paths[i]
        np.testing.assert_allclose(expected, single, rtol=1e-9)


def test_sarimax_and_prophet_keep_the_contract():
    df = _series(days=14, trend=1.0, noise=1.0)
    for name in ("sarimax", "prophet"):
        fc = get_model(name, 24).fit(df.iloc[:-24]).forecast(24, alpha=0.2)
        assert list(fc.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper"]
        assert len(fc) == 24 and fc["ds"].iloc[0] == df["ds"].iloc[-24]
        assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
        assert mae(df["y"].to_numpy()[-24:], fc["yhat"].to_numpy()) < 3.0, name


def test_input_errors_say_how_to_fix():
    with pytest.raises(ForecastError, match="24 points, at least 26 are needed"):
        SeasonalNaive(season=24).fit(_series(days=1))
    irregular = _series(days=3).drop(index=[5, 6])
    with pytest.raises(ForecastError, match="not regular"):
        FourierTrend(season=24).fit(irregular)
    bad = _series(days=3).astype({"y": object})
    bad.loc[3, "y"] = "n/a"
    with pytest.raises(ForecastError, match="1 missing or non-numeric"):
        SeasonalNaive(season=24).fit(bad)
    with pytest.raises(ForecastError, match="lacks columns"):
        SeasonalNaive(season=24).fit(_series(days=3).rename(columns={"y": "value"}))
    with pytest.raises(ForecastError, match=r"alpha=1.5 must be in \(0, 1\)"):
        SeasonalNaive(season=24).fit(_series(days=3)).forecast(5, alpha=1.5)


def test_weekly_harmonics_that_repeat_a_daily_one_are_left_out_and_the_order_grows_with_the_weeks():
    from include.headroom.forecasting.models import fourier_design, seasonal_periods

    hour = pd.Timedelta(hours=1)
    assert seasonal_periods(hour, 21 * 24) == [(24.0, 6), (168.0, 7)]  # three weeks: little weekly detail
    assert seasonal_periods(hour, 56 * 24) == [(24.0, 6), (168.0, 20)]  # eight weeks: a weekend step's shape
    assert seasonal_periods(pd.Timedelta(days=1), 400) == [(7.0, 3)]  # daily steps: at most half the period
    periods = seasonal_periods(hour, 56 * 24)
    design = fourier_design(np.arange(56 * 24, dtype=float), periods, 56 * 24)
    # intercept, trend, 6 daily pairs, 20 weekly pairs less weeks' 7th and 14th (the day's first and second harmonics)
    assert design.shape[1] == 2 + 2 * 6 + 2 * 18
    assert np.linalg.matrix_rank(design) == design.shape[1]
