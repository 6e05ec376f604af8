"""Accuracy metrics against hand-computed values; rolling-origin backtests; auto-selection never worse than naive."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import (
    METRICS,
    BacktestSpec,
    backtest_scores,
    coverage,
    cross_validate,
    mae,
    mape,
    mase,
    select_model,
    smape,
)
from include.headroom.forecasting.models import SeasonalNaive


def _series(days=21, trend=0.5, noise=1.0, seed=3):
    ds = pd.date_range("2026-09-01", periods=days * 24, freq="1h", tz="UTC")
    t = np.arange(len(ds))
    y = 100 + trend * t / 24 + 20 * np.sin(2 * np.pi * t / 24) + noise * np.random.default_rng(seed).standard_normal(len(ds))
    return pd.DataFrame({"ds": ds, "y": y})


def test_metrics_against_hand_computed_values():
    y, yhat = np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 33.0])
    assert mae(y, yhat) == pytest.approx(7 / 3)
    assert mape(y, yhat) == pytest.approx((0.2 + 0.1 + 0.1) / 3)
    assert smape(y, yhat) == pytest.approx(np.mean([4 / 22, 4 / 38, 6 / 63]))
    insample = np.array([1.0, 2.0, 4.0, 7.0])  # naive (season 1) in-sample MAE = (1 + 2 + 3) / 3 = 2
    assert mase(y, yhat, insample, season=1) == pytest.approx((7 / 3) / 2)
    # season 2: |4 - 1| and |7 - 2| -> scale 4
    assert mase(y, yhat, insample, season=2) == pytest.approx((7 / 3) / 4)
    # 10 in [9, 11], 20 not in [21, 25], 30 in [30, 31] (bounds inclusive): 2 of 3
    lower, upper = np.array([9.0, 21.0, 30.0]), np.array([11.0, 25.0, 31.0])
    assert coverage(y, yhat, lower=lower, upper=upper) == pytest.approx(2 / 3)
    assert set(METRICS) == {"mae", "mape", "smape", "mase", "coverage"}


def test_metric_edge_cases():
    assert np.isnan(mape(np.zeros(3), np.ones(3)))
    assert np.isnan(mase(np.ones(3), np.ones(3), np.full(5, 2.0), season=1))  # a constant history has no naive error
    assert np.isnan(coverage(np.ones(3), np.ones(3)))


def test_cutoffs_leave_the_horizon_and_need_the_initial_window():
    spec = BacktestSpec(initial=100, period=24, horizon=72, max_cutoffs=3)
    assert spec.cutoffs(504) == [384, 408, 432]
    assert spec.cutoffs(172) == [100]
    with pytest.raises(ForecastError, match=r"less data than horizon after initial window \(100 \+ 72 needed\)"):
        spec.cutoffs(171)
    with pytest.raises(ForecastError, match="horizon=0 must be at least 1"):
        BacktestSpec(initial=10, period=1, horizon=0)


def test_cross_validate_follows_the_prophet_contract_and_scores_by_hand():
    df = _series(days=10)
    spec = BacktestSpec(initial=7 * 24, period=24, horizon=48, max_cutoffs=2)
    cv = cross_validate(SeasonalNaive(season=24), df, spec)
    assert list(cv.columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "y", "cutoff", "horizon"]
    # 240 points, horizon 48: the last cutoff trains on 192, the one before on 168 (= initial).
    assert sorted(cv["cutoff"].unique()) == [df["ds"].iloc[167], df["ds"].iloc[191]]
    assert cv["horizon"].min() == pd.Timedelta(hours=1) and cv["horizon"].max() == pd.Timedelta(hours=48)
    # The naive forecast from a cutoff repeats the day before it; MASE by hand, each scaled by its own training data.
    y = df["y"].to_numpy()
    first = cv[cv["cutoff"] == df["ds"].iloc[167]]
    np.testing.assert_allclose(first["yhat"].to_numpy(), np.tile(y[144:168], 2))
    by_hand_1 = np.mean(np.abs(y[168:216] - np.tile(y[144:168], 2))) / np.mean(np.abs(y[24:168] - y[:144]))
    by_hand_2 = np.mean(np.abs(y[192:240] - np.tile(y[168:192], 2))) / np.mean(np.abs(y[24:192] - y[:168]))
    scores = backtest_scores(cv, df, season=24)
    assert scores["mase"] == pytest.approx((by_hand_1 + by_hand_2) / 2)
    assert scores["cutoffs"] == 2


@pytest.mark.parametrize("trend,noise,seed", [(0.5, 1.0, 1), (3.0, 2.0, 2), (0.0, 8.0, 3), (0.0, 0.0, 4)])
def test_auto_never_chooses_a_model_worse_than_naive(trend, noise, seed):
    df = _series(days=14, trend=trend, noise=noise, seed=seed)
    spec = BacktestSpec(initial=7 * 24, period=24, horizon=72)
    selection = select_model(df, ["seasonal_naive_weekly", "fourier_trend", "holt_winters"], 24, spec)
    assert selection.data_points == len(df)
    assert set(selection.scores) == {"seasonal_naive", "seasonal_naive_weekly", "fourier_trend", "holt_winters"}
    naive = selection.scores["seasonal_naive"]
    chosen = selection.chosen_scores
    if np.isfinite(naive["mase"]):
        assert chosen["mase"] <= naive["mase"]
        assert chosen["mase"] == min(s["mase"] for s in selection.scores.values() if "mase" in s and np.isfinite(s["mase"]))
    json.dumps(selection.scores)  # stored with the forecast


def test_pure_noise_keeps_the_baseline_when_nothing_beats_it():
    # White noise around 100 with no season: naive MASE ~1; candidates can tie but must beat it strictly to win.
    df = _series(days=14, trend=0.0, noise=5.0, seed=9).assign(y=lambda d: 100 + np.random.default_rng(9).normal(0, 5, len(d)))
    spec = BacktestSpec(initial=7 * 24, period=24, horizon=72)
    selection = select_model(df, ["seasonal_naive_weekly"], 24, spec)
    assert selection.chosen == "seasonal_naive" or selection.chosen_scores["mase"] < selection.scores["seasonal_naive"]["mase"]


def test_a_failing_candidate_is_recorded_not_fatal_but_a_failing_baseline_is():
    df = _series(days=12)
    spec = BacktestSpec(initial=7 * 24, period=24, horizon=72)
    selection = select_model(df, ["seasonal_naive_weekly"], 24, spec)  # a weekly naive needs a week and two steps to train
    assert "168 points, at least 170 are needed" in selection.scores["seasonal_naive_weekly"]["error"]
    assert selection.chosen == "seasonal_naive"
    with pytest.raises(ForecastError, match="less data than horizon"):
        select_model(df.iloc[: 7 * 24], ["fourier_trend"], 24, spec)


def test_batch_auto_matches_series_by_series_selection():
    from include.headroom.forecasting.batch import VECTORIZED, auto_forecast_many
    from include.headroom.forecasting.models import get_model

    frames = [_series(days=20, trend=t, noise=n, seed=s) for s, (t, n) in enumerate([(0.5, 1.0), (3.0, 2.0), (0.0, 8.0), (1.0, 0.1)])]
    frames[2] = frames[2].assign(y=lambda d: 100 + np.random.default_rng(5).normal(0, 5, len(d)))  # noise: naive or weekly
    spec = BacktestSpec(initial=7 * 24, period=24, horizon=72)
    batch = auto_forecast_many(np.vstack([f["y"].to_numpy() for f in frames]), pd.Timedelta(hours=1), 48, spec, VECTORIZED)
    for i, frame in enumerate(frames):
        single = select_model(frame, list(VECTORIZED), 24, spec)
        assert batch.chosen_names()[i] == single.chosen
        for name in VECTORIZED:
            if "error" in single.scores[name]:
                assert np.isnan(batch.scores[name]["mase"][i])
                continue
            for metric in ("mae", "mape", "mase", "coverage"):
                assert batch.scores[name][metric][i] == pytest.approx(single.scores[name][metric], rel=1e-9, nan_ok=True), (i, name, metric)
        fc = get_model(single.chosen, 24).fit(frame).forecast(48)
        np.testing.assert_allclose(batch.yhat[i], fc["yhat"].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(batch.yhat_upper[i], fc["yhat_upper"].to_numpy(), rtol=1e-9)
