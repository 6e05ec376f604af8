"""Accuracy metrics, rolling-origin backtests and per-series model selection.

Metrics share one signature ``(y, yhat, insample, season, *, lower, upper) -> float``
and live in the ``METRICS`` registry. Backtests follow Prophet's
``cross_validation`` contract: the forecast columns plus ``y``, ``cutoff`` and
``horizon``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence

from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.models import ForecastModel


def mae(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1, **_: Any) -> float:
    """Mean absolute error."""
    import numpy as np

    return float(np.mean(np.abs(y - yhat)))


def mape(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1, **_: Any) -> float:
    """Mean absolute percentage error, as a fraction; points where ``y == 0`` are left out."""
    import numpy as np

    nonzero = y != 0
    if not nonzero.any():
        return float("nan")
    return float(np.mean(np.abs((y[nonzero] - yhat[nonzero]) / y[nonzero])))


def smape(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1, **_: Any) -> float:
    """Symmetric MAPE in [0, 2]; points where both are zero are left out."""
    import numpy as np

    denom = np.abs(y) + np.abs(yhat)
    ok = denom != 0
    return float(np.mean(2.0 * np.abs(y[ok] - yhat[ok]) / denom[ok])) if ok.any() else 0.0


def naive_scale(insample: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast: the MASE denominator."""
    import numpy as np

    if insample is None or len(insample) <= season:
        return float("nan")
    return float(np.mean(np.abs(insample[season:] - insample[:-season])))


def mase(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1, **_: Any) -> float:
    """MAE scaled by the in-sample MAE of the seasonal naive forecast (below 1: better than naive in-sample)."""
    scale = naive_scale(insample, season) if insample is not None else float("nan")
    return mae(y, yhat) / scale if scale > 0 else float("nan")


def coverage(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1, *,
             lower: np.ndarray | None = None, upper: np.ndarray | None = None, **_: Any) -> float:
    """Share of actuals inside ``[lower, upper]``; an 80 % interval should cover about 0.8."""
    import numpy as np

    if lower is None or upper is None:
        return float("nan")
    return float(np.mean((y >= lower) & (y <= upper)))


METRICS: dict[str, Callable[..., float]] = {"mae": mae, "mape": mape, "smape": smape, "mase": mase, "coverage": coverage}


def score(y: np.ndarray, fc: pd.DataFrame, insample: np.ndarray, season: int) -> dict[str, float]:
    """Every metric in ``METRICS`` for one forecast frame against actuals ``y``."""
    yhat = fc["yhat"].to_numpy(float)
    bounds = {"lower": fc["yhat_lower"].to_numpy(float), "upper": fc["yhat_upper"].to_numpy(float)}
    return {name: fn(y, yhat, insample, season, **bounds) for name, fn in METRICS.items()}


def holdout_scores(model: ForecastModel, df: pd.DataFrame, holdout: int, season: int | None = None) -> dict[str, float]:
    """Fit ``model`` on all but the last ``holdout`` points and score its forecast of them (MASE at ``season``, default the model's)."""
    train, test = df.iloc[:-holdout], df.iloc[-holdout:]
    fc = model.fit(train).forecast(holdout)
    return score(test["y"].to_numpy(float), fc, train["y"].to_numpy(float), season or model.season)


@dataclass(frozen=True)
class BacktestSpec:
    """Rolling-origin cross-validation in steps: train on at least ``initial``, forecast ``horizon``, move by ``period``."""

    initial: int
    period: int
    horizon: int
    max_cutoffs: int = 3

    def __post_init__(self) -> None:
        for name in ("initial", "period", "horizon", "max_cutoffs"):
            if getattr(self, name) < 1:
                raise ForecastError(f"backtest {name}={getattr(self, name)!r} must be at least 1")

    def cutoffs(self, n: int) -> list[int]:
        """Training lengths, newest last: the last cutoff leaves exactly ``horizon`` points to score.

        :raises ForecastError: when the history is shorter than ``initial + horizon``.
        """
        if n < self.initial + self.horizon:
            raise ForecastError(
                f"{n} points: less data than horizon after initial window ({self.initial} + {self.horizon} needed). "
                "Make horizon or initial shorter, or give a longer history."
            )
        last = n - self.horizon
        out = [c for c in range(last, self.initial - 1, -self.period)][: self.max_cutoffs]
        return sorted(out)


def cross_validate(model: ForecastModel, df: pd.DataFrame, spec: BacktestSpec, alpha: float = 0.2) -> pd.DataFrame:
    """Prophet-style backtest frame: ``ds, yhat, yhat_lower, yhat_upper, y, cutoff, horizon`` for each cutoff."""
    import pandas as pd

    frames = []
    for n_train in spec.cutoffs(len(df)):
        train, test = df.iloc[:n_train], df.iloc[n_train : n_train + spec.horizon]
        fc = model.fit(train).forecast(len(test), alpha)
        cutoff = pd.Timestamp(train["ds"].iloc[-1])
        frames.append(fc.assign(y=test["y"].to_numpy(float), cutoff=cutoff, horizon=fc["ds"] - cutoff))
    return pd.concat(frames, ignore_index=True)


def backtest_scores(cv: pd.DataFrame, df: pd.DataFrame, season: int) -> dict[str, float]:
    """Metrics per cutoff averaged over cutoffs; MASE is scaled by the naive error of each cutoff's own training data."""
    import numpy as np
    import pandas as pd

    ds = pd.to_datetime(df["ds"], utc=True)
    values = df["y"].to_numpy(float)
    per_cutoff = []
    for cutoff, fc in cv.groupby("cutoff", sort=True):
        insample = values[ds <= cutoff]
        per_cutoff.append(score(fc["y"].to_numpy(float), fc, insample, season))
    return {name: float(np.nanmean([s[name] for s in per_cutoff])) for name in METRICS} | {"cutoffs": float(len(per_cutoff))}


@dataclass(frozen=True)
class Selection:
    """The model ``auto`` chose for one series, with every candidate's backtest scores (or error)."""

    chosen: str
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_points: int = 0

    @property
    def chosen_scores(self) -> dict[str, float]:
        return self.scores[self.chosen]


def select_model(
    df: pd.DataFrame, candidates: Sequence[str], season: int, spec: BacktestSpec, alpha: float = 0.2, baseline: str = "seasonal_naive",
) -> Selection:
    """Backtest every candidate and keep the lowest mean MASE; the seasonal naive baseline is always a candidate.

    A candidate only wins if it beats the baseline's MASE, so the choice is never worse
    than seasonal naive on the backtest. Candidates that fail are kept with their error.

    :raises ForecastError: when not even the baseline can be backtested (too short a history).
    """
    from include.headroom.forecasting.models import get_model

    names = [baseline] + [c for c in candidates if c != baseline]
    scores: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            cv = cross_validate(get_model(name, season), df, spec, alpha)
            scores[name] = backtest_scores(cv, df, season)
        except ForecastError as exc:
            if name == baseline:
                raise
            scores[name] = {"error": str(exc)}
    chosen = baseline
    for name in names[1:]:
        value = scores[name].get("mase", float("nan"))
        if isinstance(value, float) and math.isfinite(value) and value < scores[chosen]["mase"]:
            chosen = name
    if not math.isfinite(scores[baseline]["mase"]):
        # Constant history (zero naive error): fall back to the lowest MAE.
        finite = {n: s["mae"] for n, s in scores.items() if "mae" in s and math.isfinite(s["mae"])}
        chosen = min(finite, key=lambda n: (finite[n], n != baseline))
    return Selection(chosen=chosen, scores=scores, data_points=len(df))
