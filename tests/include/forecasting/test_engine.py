"""The ``auto`` engine: seasonality found per series, level shifts and trend breaks, outliers, combination, the guard and conformal
intervals."""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pandas as pd
import pytest

from include.headroom.config import get_config
from include.headroom.exceptions import ForecastError
from include.headroom.forecasting import engine
from include.headroom.forecasting.engine import (
    EngineSpec,
    adjust_level_shifts,
    adjust_trend_breaks,
    conformal_width,
    detect_periods,
    detect_periods_many,
    run_engine,
    spec_for,
)
from scripts.shared_data import petshop_dir

HOUR = pd.Timedelta(hours=1)


def _series(n=24 * 28, seed=0, weekend=0.0, shift_at=None, shift=0.0, noise=3.0, slope=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 20 * np.sin(2 * np.pi * t / 24) + weekend * (t % 168 >= 120) + slope * t + rng.normal(0, noise, n)
    if shift_at is not None:
        y[shift_at:] += shift
    return y


def test_seasonality_is_found_per_series():
    rng = np.random.default_rng(3)
    t = np.arange(24 * 28)
    assert detect_periods(_series(), 24) == (24,)
    assert detect_periods(_series(weekend=15.0), 24) == (24, 168)
    assert detect_periods(rng.normal(0, 1, 24 * 28), 24) == ()  # noise: no season
    assert detect_periods(10 * np.sin(2 * np.pi * t / 10) + rng.normal(0, 1, len(t)), 24) == (10,)  # another period
    assert detect_periods(_series(n=24 * 10), 24) == (24,)  # under two weeks: the weekly lag is not judged
    rows = np.vstack([_series(), _series(weekend=15.0), rng.normal(0, 1, 24 * 28)])
    assert detect_periods_many(rows, 24) == [(24,), (24, 168), ()]


def test_a_level_shift_is_found_and_the_history_moved_to_the_new_level():
    y = _series(shift_at=400, shift=50.0, weekend=10.0)
    adjusted, cuts = adjust_level_shifts(y, 24, periods=(24, 168))
    assert cuts == [400]
    assert np.mean(adjusted[:400]) == pytest.approx(np.mean(y[400:]) - 0.0, abs=6.0)  # the old level moved up by about 50
    assert np.allclose(adjusted[400:], y[400:])  # the recent data is untouched
    # A weekend, a steady trend and growth that bends are not shifts.
    assert adjust_level_shifts(_series(weekend=30.0), 24, periods=(24, 168))[1] == []
    assert adjust_level_shifts(_series(slope=0.2), 24, periods=(24,))[1] == []
    t = np.arange(24 * 28)
    bending = 100 * np.exp(t / 300) + 10 * np.sin(2 * np.pi * t / 24)
    assert adjust_level_shifts(bending, 24, periods=(24,))[1] == []


def test_a_series_that_moved_is_forecast_from_where_it_is_now():
    y = _series(n=24 * 28 + 24, shift_at=500, shift=-60.0)
    train, test = y[:-24], y[-24:]
    spec = spec_for(get_config().forecasting, 24, 24, len(train))
    out = run_engine(train[None, :], HOUR, 24, spec)
    assert out.rows[0].breaks == (500,)
    assert abs(np.mean(out.yhat[0]) - np.mean(test)) < 6.0  # at the new level (about 40), not between the two (about 70)
    assert np.mean(np.abs(out.yhat[0] - test)) < 1.2 * np.mean(np.abs(train[-24:] - test))


def _bent(n=24 * 28 + 48, seed=0, at=400, before=0.0, after=0.15, noise=3.0, step=24):
    """A daily season, noise, and a slope that changes from ``before`` to ``after`` per step at ``at``; also the noise-free path."""
    t = np.arange(n)
    clean = 100 + 20 * np.sin(2 * np.pi * t / step) + before * t + (after - before) * np.maximum(t - at, 0)
    return clean + np.random.default_rng(seed).normal(0, noise, n), clean


def test_a_change_of_slope_is_found_and_the_history_tilted_onto_the_new_slope():
    y, _ = _bent(n=24 * 28)
    tilted, kinks, slope = adjust_trend_breaks(y, 24, periods=(24,), per_day=24)
    assert len(kinks) == 1 and abs(kinks[0] - 400) <= 24  # within a day of the bend
    assert slope == pytest.approx(0.15, abs=0.015)  # the current slope, per step
    t = np.arange(len(y))
    assert np.polyfit(t[:350], tilted[:350], 1)[0] == pytest.approx(0.15, abs=0.02)  # the old flat part now rises as the new one
    assert np.allclose(tilted[kinks[0] :], y[kinks[0] :])  # the data after the bend is untouched
    # A steady trend, a weekend, a level shift and plain noise are not trend breaks.
    assert adjust_trend_breaks(_series(slope=0.2), 24, periods=(24,), per_day=24)[1:] == ([], 0.0)
    assert adjust_trend_breaks(_series(weekend=30.0), 24, periods=(24, 168), per_day=24)[1] == []
    assert adjust_trend_breaks(_series(shift_at=400, shift=50.0), 24, periods=(24,), per_day=24)[1] == []
    assert adjust_trend_breaks(np.random.default_rng(5).normal(0, 1, 24 * 28), 24, per_day=24)[1] == []
    # A bend is not a level shift either (it is not sharp, and a line that bends fits it better than a step).
    assert adjust_level_shifts(y, 24, periods=(24,))[1] == []
    # At 5 minutes with five days, quarter-day blocks of the seasonally adjusted series find it too.
    y5, _ = _bent(n=288 * 5, at=1040, after=0.05, step=288)
    assert abs(adjust_trend_breaks(y5, 288, periods=(288,), per_day=288)[1][0] - 1040) <= 72
    # Too short to tell a bend from a season (under four days at 5 minutes): not tested.
    assert adjust_trend_breaks(y5[: 288 * 3], 288, periods=(288,), per_day=288)[1] == []


def test_a_series_whose_growth_changed_is_forecast_from_its_current_slope():
    y, clean = _bent()
    train, future = y[:-48], clean[-48:]
    spec = spec_for(get_config().forecasting, 24, 48, len(train))
    out = run_engine(train[None, :], HOUR, 48, spec)
    row = out.rows[0]
    assert len(row.trend_breaks) == 1 and abs(row.trend_breaks[0] - 400) <= 24
    # The forecast rises as the series does now: its slope over two days is the new one, and it follows the noise-free path.
    assert np.polyfit(np.arange(48), out.yhat[0] - 20 * np.sin(2 * np.pi * np.arange(len(train), len(y)) / 24), 1)[0] == \
        pytest.approx(0.15, abs=0.03)
    assert np.mean(np.abs(out.yhat[0] - future)) < 1.2
    # Without the trend-break step the candidates read an averaged, damped slope and fall behind.
    off = run_engine(train[None, :], HOUR, 48, dataclasses.replace(spec, trend_z=0.0))
    assert off.rows[0].trend_breaks == ()
    assert np.mean(np.abs(off.yhat[0] - future)) > 2 * np.mean(np.abs(out.yhat[0] - future))


def test_a_series_without_a_trend_break_gets_the_same_forecast_as_without_the_step():
    rows = np.vstack([_series(seed=1), _series(seed=2, slope=0.2), _series(seed=3, weekend=15.0),
                      _series(seed=4, shift_at=400, shift=40.0)])
    spec = spec_for(get_config().forecasting, 24, 24, rows.shape[1])
    on, off = run_engine(rows, HOUR, 24, spec), run_engine(rows, HOUR, 24, dataclasses.replace(spec, trend_z=0.0))
    assert all(r.trend_breaks == () for r in on.rows)
    assert np.array_equal(on.yhat, off.yhat) and np.array_equal(on.yhat_upper, off.yhat_upper)
    assert [r.model for r in on.rows] == [r.model for r in off.rows]


def test_one_extreme_point_does_not_reach_the_forecast():
    y = _series()
    y[300] = 1e12
    spec = spec_for(get_config().forecasting, 24, 24, len(y))
    out = run_engine(y[None, :], HOUR, 24, spec)
    assert out.rows[0].outliers == 1
    assert out.yhat[0].min() > 50 and out.yhat_upper[0].max() < 150


def test_conformal_width_is_the_finite_sample_quantile_per_step():
    # 5 origins x 1 series x 4 steps; step h's errors are 1..5 times (h + 1); no pooling across steps.
    errors = np.arange(1, 6)[:, None, None] * np.arange(1, 5)[None, None, :].astype(float)
    width = conformal_width(errors, alpha=0.2, horizon=4, window=0)
    # ceil((5 + 1) * 0.8) / 5 = 1.0: the largest of five errors.
    assert np.allclose(width[0], [5, 10, 15, 20])
    width = conformal_width(errors, alpha=0.5, horizon=6, window=0)  # ceil(6 * 0.5) = 3rd of five
    assert np.allclose(width[0, :4], [3, 6, 9, 12])
    assert np.allclose(width[0, 4:], 12 * np.sqrt(np.array([5, 6]) / 4))  # past the backtest horizon: sqrt growth


def test_intervals_cover_close_to_their_level_on_held_out_data():
    rows, tests = [], []
    for seed in range(40):
        y = _series(n=24 * 21 + 24, seed=seed, noise=5.0)
        rows.append(y[:-24])
        tests.append(y[-24:])
    spec = spec_for(get_config().forecasting, 24, 24, len(rows[0]))
    out = run_engine(np.vstack(rows), HOUR, 24, spec, alpha=0.2)
    actual = np.vstack(tests)
    coverage = np.mean((actual >= out.yhat_lower) & (actual <= out.yhat_upper))
    assert 0.72 <= coverage <= 0.9
    loo = np.mean([r.scores["auto"]["coverage"] for r in out.rows])  # leave-one-origin-out, as stored
    assert 0.7 <= loo <= 0.9


def test_the_batch_gives_what_each_series_gets_alone():
    rows = np.vstack([_series(seed=s, weekend=10.0 * (s % 2), shift_at=300 if s == 2 else None, shift=40.0) for s in range(4)])
    spec = spec_for(get_config().forecasting, 24, 48, rows.shape[1])
    batch = run_engine(rows, HOUR, 48, spec)
    for i in range(4):
        alone = run_engine(rows[i : i + 1], HOUR, 48, spec)
        assert batch.rows[i].model == alone.rows[0].model and batch.rows[i].breaks == alone.rows[0].breaks
        assert np.allclose(batch.yhat[i], alone.yhat[0]) and np.allclose(batch.yhat_upper[i], alone.yhat_upper[0])


def test_combination_and_the_worst_case_guard(monkeypatch):
    """A candidate that is perfect on older origins but far off on the newest one is never chosen."""
    y = _series(n=24 * 21, noise=2.0)
    truth = y.copy()
    spec = EngineSpec(candidates=("seasonal_naive", "oracle", "ets"), horizon=24, origins=4, every=24, min_train=24 * 10)
    newest = len(y) - 24

    def oracle(train, grid, horizon):  # knows the future, except at the newest origin
        n = train.shape[1]
        path = truth[n : n + horizon] if n + horizon <= len(truth) else np.full(horizon, truth[-1])
        return np.tile(path + (8.0 if n == newest else 0.0), (train.shape[0], 1))

    monkeypatch.setitem(engine.KERNELS, "oracle", oracle)
    out = run_engine(y[None, :], HOUR, 24, spec)
    row = out.rows[0]
    assert row.scores["oracle"]["mase"] < row.scores["seasonal_naive"]["mase"]  # by its mean error it would be the best
    assert "oracle" not in row.members
    # Without the newest-origin blunder the oracle is the clear best and is used alone (not diluted).
    monkeypatch.setattr(engine, "KERNELS", {**engine.KERNELS, "oracle": lambda tr, g, h: np.tile(
        truth[tr.shape[1] : tr.shape[1] + h] if tr.shape[1] + h <= len(truth) else np.full(h, truth[-1]), (tr.shape[0], 1))})
    out = run_engine(y[None, :], HOUR, 24, spec)
    assert out.rows[0].members == ("oracle",) and out.rows[0].scores["auto"]["mase"] == pytest.approx(0.0, abs=1e-9)


def test_inverse_error_weights_and_median():
    y = _series(n=24 * 21, weekend=10.0)
    spec = spec_for(get_config().forecasting, 24, 24, len(y))
    out = run_engine(y[None, :], HOUR, 24, spec)
    row = out.rows[0]
    if len(row.members) > 1:
        inverse = np.array([1.0 / row.scores[m]["mase"] for m in row.members])
        assert np.allclose(row.weights, inverse / inverse.sum(), atol=1e-3)
        assert row.model == f"ensemble({'+'.join(row.members)})"
    assert row.scores["auto"]["mase"] <= row.scores["seasonal_naive"]["mase"]
    with pytest.raises(ForecastError, match="combine='mean' must be 'inverse_error' or 'median'"):
        EngineSpec(combine="mean")
    with pytest.raises(ForecastError, match=r"less data than horizon after initial window \(48 \+ 24 needed\)"):
        EngineSpec(min_train=48).origin_lengths(60)


@pytest.mark.skipif(petshop_dir() is None, reason="the shared PetShop data set is not on this machine")
def test_petshop_requests_beat_seasonal_naive():
    """Real AWS request counts at 5 minutes (two days): hold out the last 6 hours of every service's series."""
    with gzip.open(petshop_dir() / "low_traffic" / "noissue.csv.gz", "rt") as fh:
        frame = pd.read_csv(fh)
    frame = frame[(frame["metric"] == "requests") & (frame["statistic"] == "Sum")]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    series = []
    for _, rows in frame.groupby("service"):
        s = rows.set_index("timestamp")["value"].sort_index().resample("5min").mean()
        if s.notna().sum() >= 560 and s.std() > 0:
            series.append(s.interpolate(limit_direction="both").to_numpy(float)[:589])
    series = [s for s in series if len(s) == 589]
    assert len(series) >= 8
    values = np.vstack(series)
    train, test = values[:, :-72], values[:, -72:]
    spec = spec_for(get_config().forecasting, 288, 72, train.shape[1])
    out = run_engine(train, pd.Timedelta(minutes=5), 72, spec)
    naive = np.mean(np.abs(train[:, -288:-216] - test), axis=1)
    auto = np.mean(np.abs(out.yhat - test), axis=1)
    ok = naive > 0
    assert np.median(auto[ok] / naive[ok]) < 0.95
    assert all(r.periods == (288,) or r.periods == () or len(r.periods) == 1 for r in out.rows)
