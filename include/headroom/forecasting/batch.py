"""``auto`` for many series on one time grid at once: backtests and forecasts as matrix operations.

Gives the same choice and scores as :func:`~include.headroom.forecasting.evaluation.select_model`
run series by series with the vectorized models (``seasonal_naive``,
``seasonal_naive_weekly``, ``fourier_trend``), but the Fourier design matrix and
its solve are shared by every series at each cutoff, and the naive forecasts
are slices. This is what makes backtesting a fleet cheap (see
``benchmarks/bench_forecast.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from collections.abc import Sequence

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import BacktestSpec
from include.headroom.forecasting.models import BASELINE, _z, fit_fourier_many

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

VECTORIZED = ("seasonal_naive", "seasonal_naive_weekly", "fourier_trend")
SCORE_NAMES = ("mae", "mape", "smape", "mase", "coverage")


@dataclass(frozen=True)
class BatchForecast:
    """Per series (rows): the chosen model, backtest scores of every candidate, and the forecast arrays."""

    candidates: tuple[str, ...]
    chosen: np.ndarray  # (series,) index into candidates
    scores: dict[str, dict[str, np.ndarray]]  # model -> metric -> (series,)
    yhat: np.ndarray  # (series, horizon)
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray

    def chosen_names(self) -> list[str]:
        return [self.candidates[i] for i in self.chosen]


def _paths(name: str, train: np.ndarray, step: pd.Timedelta, per_day: int, horizon: int, z: float) -> tuple[np.ndarray, ...]:
    """(yhat, lower, upper) for every row of ``train`` with one vectorized model; the interval as in ``FittedForecast``."""
    import numpy as np

    k = np.arange(1, horizon + 1)
    if name in ("seasonal_naive", "seasonal_naive_weekly"):
        m = per_day * (7 if name == "seasonal_naive_weekly" else 1)
        if train.shape[1] < 2 * m:
            raise ForecastError(f"{name}: {train.shape[1]} points, at least {2 * m} are needed. Give a longer history.")
        last = train[:, -m:]
        yhat = np.take(last, np.arange(horizon) % m, axis=1)
        sigma = np.std(train[:, m:] - train[:, :-m], axis=1)
        width = z * sigma[:, None] * np.sqrt(1.0 + (k - 1) / m)[None, :]
        return yhat, yhat - width, yhat + width
    if name == "fourier_trend":
        fit = fit_fourier_many(train, step)
        path = fit.predict(horizon)
        width = z * fit.sigma[:, None] * np.sqrt(1.0 + (k - 1) / max(per_day, 1))[None, :]
        lower, upper = path - width, path + width
        log = fit.log_scale[:, None]
        return (np.where(log, np.exp(path), path), np.where(log, np.exp(lower), lower), np.where(log, np.exp(upper), upper))
    raise ForecastError(f"model {name!r} is not vectorized; batch models are {list(VECTORIZED)}")


def _row_scores(y: np.ndarray, yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    import numpy as np

    err = np.abs(y - yhat)
    mae = err.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.where(y != 0, err / np.abs(y), np.nan)
        denom = np.abs(y) + np.abs(yhat)
        sape = np.where(denom != 0, 2.0 * err / denom, np.nan)
        has_y = (y != 0).any(axis=1)
        mape = np.where(has_y, np.nanmean(np.where(has_y[:, None], ape, 0.0), axis=1), np.nan)
        has_d = (denom != 0).any(axis=1)
        smape = np.where(has_d, np.nanmean(np.where(has_d[:, None], sape, 0.0), axis=1), 0.0)
        mase = np.where(scale > 0, mae / scale, np.nan)
    coverage = ((y >= lower) & (y <= upper)).mean(axis=1)
    return {"mae": mae, "mape": mape, "smape": smape, "mase": mase, "coverage": coverage}


def auto_forecast_many(
    values: np.ndarray, step: pd.Timedelta, horizon: int, spec: BacktestSpec, candidates: Sequence[str] = VECTORIZED,
    alpha: float = 0.2,
) -> BatchForecast:
    """Backtest ``candidates`` on every row of ``values`` (series x time, one grid), choose per row, forecast ``horizon``.

    The baseline (seasonal naive) is always a candidate and a model must beat its mean
    MASE to be chosen. A candidate that cannot be fitted (too short) scores NaN.
    """
    import warnings

    import numpy as np
    import pandas as pd

    y = np.atleast_2d(np.asarray(values, dtype=float))
    if np.isnan(y).any():
        rows = np.flatnonzero(np.isnan(y).any(axis=1))
        raise ForecastError(f"series {rows[:5].tolist()} have missing values; fill them first")
    per_day = max(1, int(round(pd.Timedelta(days=1) / step)))
    names = (BASELINE, *[c for c in candidates if c != BASELINE])
    z = _z(alpha)
    n_series = y.shape[0]
    totals = {name: {m: [] for m in SCORE_NAMES} for name in names}
    failed: set[str] = set()
    for n_train in spec.cutoffs(y.shape[1]):
        train, test = y[:, :n_train], y[:, n_train : n_train + spec.horizon]
        scale = np.mean(np.abs(train[:, per_day:] - train[:, :-per_day]), axis=1)
        for name in names:
            try:
                paths = _paths(name, train, step, per_day, test.shape[1], z)
            except ForecastError:
                if name == BASELINE:
                    raise
                failed.add(name)
                for m in SCORE_NAMES:
                    totals[name][m].append(np.full(n_series, np.nan))
                continue
            for m, v in _row_scores(test, *paths, scale).items():
                totals[name][m].append(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        # As series by series: a candidate that fails at any cutoff is out (all NaN).
        scores = {name: {m: np.nanmean(np.vstack(v), axis=0) if name not in failed else np.full(n_series, np.nan)
                         for m, v in metrics.items()} for name, metrics in totals.items()}
    chosen = np.zeros(n_series, dtype=int)
    best = scores[BASELINE]["mase"].copy()
    for i, name in enumerate(names[1:], start=1):
        better = np.isfinite(scores[name]["mase"]) & (scores[name]["mase"] < best)
        chosen[better], best[better] = i, scores[name]["mase"][better]
    flat = ~np.isfinite(scores[BASELINE]["mase"])  # constant history: no naive error to scale by; lowest MAE wins
    if flat.any():
        mae = np.vstack([np.where(np.isfinite(scores[n]["mae"]), scores[n]["mae"], np.inf) for n in names])
        chosen[flat] = np.argmin(mae[:, flat], axis=0)
    yhat, lower, upper = (np.empty((n_series, horizon)) for _ in range(3))
    for i, name in enumerate(names):
        rows = chosen == i
        if rows.any():
            paths = _paths(name, y[rows], step, per_day, horizon, z)
            yhat[rows], lower[rows], upper[rows] = paths
    return BatchForecast(candidates=names, chosen=chosen, scores=scores, yhat=yhat, yhat_lower=lower, yhat_upper=upper)
