"""Forecast models with one data contract: input ``ds``, ``y``; output ``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper``.

A model is a specification; ``fit()`` returns an immutable fitted result whose
``forecast(horizon, alpha)`` gives the future frame. Models live in the
``MODELS`` registry keyed by name; adding one is one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Callable, ClassVar

from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ForecastError(f"alpha={alpha!r} must be in (0, 1)")
    return NormalDist().inv_cdf(1 - alpha / 2)


def _check_input(df: pd.DataFrame, min_points: int, model: str) -> tuple[pd.DatetimeIndex, np.ndarray, pd.Timedelta]:
    import numpy as np
    import pandas as pd

    missing = {"ds", "y"} - set(df.columns)
    if missing:
        raise ForecastError(f"{model}: input lacks columns {sorted(missing)}; it needs 'ds' and 'y'")
    if len(df) < min_points:
        raise ForecastError(f"{model}: {len(df)} points, at least {min_points} are needed. Give a longer history.")
    ds = pd.DatetimeIndex(pd.to_datetime(df["ds"], utc=True))
    steps = np.diff(ds.asi8)
    if len(steps) == 0 or steps[0] <= 0 or (steps != steps[0]).any():
        raise ForecastError(f"{model}: timestamps are not regular; resample to a fixed frequency first")
    y = pd.to_numeric(df["y"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any():
        raise ForecastError(f"{model}: 'y' has {int(np.isnan(y).sum())} missing or non-numeric values; fill or drop them first")
    return ds, y, ds[1] - ds[0]


@dataclass(frozen=True)
class FittedForecast:
    """A fitted model: point path and residual scale, ready to extend to any horizon."""

    model: str
    last_ds: pd.Timestamp
    step: pd.Timedelta
    season: int
    sigma: float
    predict_path: Callable[[int], np.ndarray]
    log_scale: bool = False  # path and sigma are in log space

    def forecast(self, horizon: int, alpha: float = 0.2) -> pd.DataFrame:
        """``horizon`` future steps; the interval widens with the square root of the seasons ahead."""
        import numpy as np
        import pandas as pd

        if horizon < 1:
            raise ForecastError(f"{self.model}: horizon={horizon!r} must be at least 1 step")
        yhat = self.predict_path(horizon)
        steps_ahead = np.arange(1, horizon + 1)
        width = _z(alpha) * self.sigma * np.sqrt(1.0 + (steps_ahead - 1) / max(self.season, 1))
        lower, upper = yhat - width, yhat + width
        if self.log_scale:
            yhat, lower, upper = np.exp(yhat), np.exp(lower), np.exp(upper)
        ds = pd.date_range(self.last_ds + self.step, periods=horizon, freq=self.step)
        return pd.DataFrame({"ds": ds, "yhat": yhat, "yhat_lower": lower, "yhat_upper": upper})


class ForecastModel:
    """Base class: subclasses set ``name`` and implement ``fit``."""

    name: ClassVar[str]

    def __init__(self, season: int = 24) -> None:
        if season < 1:
            raise ForecastError(f"{type(self).__name__}: season={season!r} must be >= 1")
        self.season = season

    def min_points(self) -> int:
        return 2 * self.season

    def fit(self, df: pd.DataFrame) -> FittedForecast:  # pragma: no cover - abstract
        raise NotImplementedError


class SeasonalNaive(ForecastModel):
    """Each future step repeats the value one season earlier: the baseline every model must beat."""

    name = "seasonal_naive"

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import numpy as np

        ds, y, step = _check_input(df, self.min_points(), self.name)
        m = self.season
        last_season = y[-m:].copy()
        residuals = y[m:] - y[:-m]
        sigma = float(np.std(residuals)) if len(residuals) > 1 else 0.0
        return FittedForecast(
            model=self.name, last_ds=ds[-1], step=step, season=m, sigma=sigma,
            predict_path=lambda h: np.resize(last_season, h),
        )


class HoltWinters(ForecastModel):
    """statsmodels Holt-Winters with additive trend and season.

    Positive series are fitted on the log scale, so growth compounds and the
    season scales with the level, as traffic does; the additive trend on raw
    values drifts badly on long seasons.
    """

    name = "holt_winters"

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import warnings

        import numpy as np
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        ds, y, step = _check_input(df, self.min_points(), self.name)
        log_scale = bool(np.all(y > 0))
        values = np.log(y) if log_scale else y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = ExponentialSmoothing(
                values, trend="add", seasonal="add", seasonal_periods=self.season, initialization_method="heuristic",
            ).fit(optimized=True)
        residuals = values - fitted.fittedvalues
        return FittedForecast(
            model=self.name, last_ds=ds[-1], step=step, season=self.season, sigma=float(np.std(residuals)),
            predict_path=lambda h: np.asarray(fitted.forecast(h), dtype=float), log_scale=log_scale,
        )


MODELS: dict[str, type[ForecastModel]] = {cls.name: cls for cls in (SeasonalNaive, HoltWinters)}


def get_model(name: str, season: int) -> ForecastModel:
    try:
        return MODELS[name](season=season)
    except KeyError:
        raise ForecastError(f"unknown model {name!r}; models are {sorted(MODELS)}") from None
