"""Forecast models with one data contract: input ``ds``, ``y``; output ``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper``.

A model is a specification; ``fit()`` returns an immutable fitted result whose
``forecast(horizon, alpha)`` gives the future frame. Models live in the
``MODELS`` registry keyed by name; adding one is one class.

``season`` is the number of steps in one day at the series' frequency (the
daily season); models that also use weekly or yearly seasons derive them from
the timestamps, as Prophet does. The vectorized models (``seasonal_naive``,
``seasonal_naive_weekly``, ``fourier_trend``) also fit many series sharing
one time grid in one call (:func:`fit_fourier_many`), which the benchmark and
the backtests use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, ClassVar
from collections.abc import Callable, Sequence

from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DAY_NS = 86_400 * 10**9
YEAR_DAYS = 365.25


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
    """A fitted model: point path and residual scale, ready to extend to any horizon.

    Models with their own interval machinery (SARIMAX, Prophet) pass ``predict_interval``,
    which returns ``(yhat, lower, upper)`` for ``(horizon, alpha)``; the others get
    a normal interval of ``sigma`` widening with the square root of the seasons ahead.
    """

    model: str
    last_ds: pd.Timestamp
    step: pd.Timedelta
    season: int
    sigma: float
    predict_path: Callable[[int], np.ndarray]
    log_scale: bool = False  # path and sigma are in log space
    predict_interval: Callable[[int, float], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def forecast(self, horizon: int, alpha: float = 0.2) -> pd.DataFrame:
        """``horizon`` future steps with the ``1 - alpha`` interval."""
        import numpy as np
        import pandas as pd

        if horizon < 1:
            raise ForecastError(f"{self.model}: horizon={horizon!r} must be at least 1 step")
        z = _z(alpha)
        if self.predict_interval is not None:
            yhat, lower, upper = self.predict_interval(horizon, alpha)
        else:
            yhat = self.predict_path(horizon)
            steps_ahead = np.arange(1, horizon + 1)
            width = z * self.sigma * np.sqrt(1.0 + (steps_ahead - 1) / max(self.season, 1))
            lower, upper = yhat - width, yhat + width
        if self.log_scale:
            yhat, lower, upper = np.exp(yhat), np.exp(lower), np.exp(upper)
        ds = pd.date_range(self.last_ds + self.step, periods=horizon, freq=self.step)
        return pd.DataFrame(
            {"ds": ds, "yhat": np.asarray(yhat, float), "yhat_lower": np.asarray(lower, float), "yhat_upper": np.asarray(upper, float)}
        )


class ForecastModel:
    """Base class: subclasses set ``name`` and implement ``fit``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, season: int = 24) -> None:
        if season < 1:
            raise ForecastError(f"{type(self).__name__}: season={season!r} must be >= 1")
        self.season = season

    def min_points(self) -> int:
        return 2 * self.season

    def fit(self, df: pd.DataFrame) -> FittedForecast:  # pragma: no cover - abstract
        raise NotImplementedError


class SeasonalNaive(ForecastModel):
    """Each future step repeats the value one day earlier: the baseline every model must beat."""

    name = "seasonal_naive"
    description = "repeat the last day"
    period_days: ClassVar[int] = 1

    def min_points(self) -> int:
        return self.season * self.period_days + 2  # one season to repeat, and one seasonal difference for the interval

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import numpy as np

        ds, y, step = _check_input(df, self.min_points(), self.name)
        m = self.season * self.period_days
        last_season = y[-m:].copy()
        residuals = y[m:] - y[:-m]
        sigma = float(np.std(residuals)) if len(residuals) > 1 else 0.0
        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=m,
            sigma=sigma,
            predict_path=lambda h: np.resize(last_season, h),
        )


class SeasonalNaiveWeekly(SeasonalNaive):
    """Each future step repeats the value one week earlier (keeps weekday/weekend shapes)."""

    name = "seasonal_naive_weekly"
    description = "repeat the last week"
    period_days = 7


# -- Fourier regression: shared design matrices, many series per solve ---------------------------


FOURIER_ORDERS = (6, 20, 8)  # daily, weekly (at most; see seasonal_periods), yearly
WEEKLY_ORDER_PER_WEEK = 2.5


def seasonal_periods(step: pd.Timedelta, n_points: int, orders: tuple[int, int, int] = FOURIER_ORDERS) -> list[tuple[float, int]]:
    """Seasons (period in steps, Fourier order) that ``n_points`` at ``step`` can identify: daily, weekly, yearly.

    A week's shape is mostly a weekend step: with a few harmonics its ripple (Gibbs) puts
    weekdays a percent or more off, which moves a saturation date that is days away by a day.
    The weekly order grows with the whole weeks of history (``WEEKLY_ORDER_PER_WEEK`` a week,
    at least 6, at most ``orders[1]``: more detail needs more weeks to be told from noise). The
    weekly harmonics that repeat a daily one are left out of the design (:func:`fourier_design`).
    """
    steps_per_day = DAY_NS / step.value
    days = n_points / steps_per_day
    periods = []
    if steps_per_day >= 2:
        periods.append((steps_per_day, max(1, min(orders[0], int(steps_per_day // 2)))))
    if steps_per_day * 7 >= 4 and days >= 14:
        weekly = min(orders[1], max(6, int(WEEKLY_ORDER_PER_WEEK * (days // 7))))
        periods.append((steps_per_day * 7, max(1, min(weekly, int(steps_per_day * 7 // 2)))))
    if days >= 2 * YEAR_DAYS and steps_per_day * YEAR_DAYS >= 8:
        periods.append((steps_per_day * YEAR_DAYS, orders[2]))
    return periods


def changepoints(n_train: int, step: pd.Timedelta, every_days: float = 7.0, clear_share: float = 0.2) -> list[float]:
    """Trend changepoints (in steps): ``every_days`` apart (at most 25 of them), none in the last ``clear_share`` of
    training (at least a week)."""
    per_day = DAY_NS / step.value
    days = n_train / per_day
    every = max(every_days, days / 25) * per_day
    keep_clear = max(7.0, clear_share * days) * per_day
    return [k * every for k in range(1, int(n_train // every) + 1) if k * every <= n_train - keep_clear]


def fourier_design(t: np.ndarray, periods: list[tuple[float, int]], n_train: int, knots: Sequence[float] = ()) -> np.ndarray:
    """Columns: intercept, trend (in units of the training length), hinges ``max(0, t - knot)``, then sin/cos pairs.

    ``t`` counts steps from the start of training, so the same matrix serves every
    series that shares the time grid.
    """
    import numpy as np

    scale = max(n_train, 1)
    cols = [np.ones(len(t)), t / scale] + [np.maximum(t - k, 0.0) / scale for k in knots]
    done: list[tuple[float, int]] = []
    for period, order in periods:
        for k in range(1, order + 1):
            if any(_same_wave(period, k, shorter, its_order) for shorter, its_order in done):
                continue  # the same sine as a harmonic of a shorter season already in the design (week k = 7 j, day j)
            angle = 2.0 * np.pi * k * t / period
            cols += [np.sin(angle), np.cos(angle)]
        done.append((period, order))
    return np.column_stack(cols)


def _same_wave(period: float, k: int, shorter: float, order: int) -> bool:
    """Whether harmonic ``k`` of ``period`` is a harmonic ``1..order`` of ``shorter`` (frequency ``k / period == j / shorter``)."""
    j = k * shorter / period
    return abs(j - round(j)) < 1e-9 and 1 <= round(j) <= order


@dataclass(frozen=True)
class FourierFit:
    """Coefficients of many series fitted on one design; rows of every array are series."""

    coef: np.ndarray  # (series, columns)
    level: np.ndarray  # (series,) recent residual level carried forward
    sigma: np.ndarray  # (series,) residual standard deviation
    log_scale: np.ndarray  # (series,) bool
    periods: list[tuple[float, int]]
    n_train: int
    knots: tuple[float, ...] = ()

    def predict(self, horizon: int) -> np.ndarray:
        """Point paths (series, horizon) on the fitted scale (log for log-scale series)."""
        import numpy as np

        t = np.arange(self.n_train, self.n_train + horizon, dtype=float)
        return self.coef @ fourier_design(t, self.periods, self.n_train, self.knots).T + self.level[:, None]


def fit_fourier_many(
    values: np.ndarray,
    step: pd.Timedelta,
    level_halflife: float | None = None,
    changepoint_every_days: float = 7.0,
    changepoint_penalty: float = 1.0,
) -> FourierFit:
    """Fit a piecewise-linear trend plus Fourier seasons to each row of ``values`` (series x time) in one solve.

    Positive rows are fitted on the log scale too (growth compounds and the season scales
    with the level) and keep that fit where it matches the raw values better. The trend
    may bend at weekly changepoints; a ridge penalty on the bends (Prophet uses a Laplace
    prior for the same purpose) keeps it from chasing noise.
    The exponentially weighted mean of the last residuals (half-life one day) is carried
    forward as a level correction, so a recent step change is followed.
    """
    import numpy as np

    y = np.atleast_2d(np.asarray(values, dtype=float))
    n = y.shape[1]
    periods = seasonal_periods(step, n)
    knots = tuple(changepoints(n, step, changepoint_every_days)) if changepoint_every_days > 0 else ()
    X = fourier_design(np.arange(n, dtype=float), periods, n, knots)
    penalty = np.zeros(X.shape[1])
    # Scaled with the history length and shared among the bends, so it weighs the same for any history.
    penalty[2 : 2 + len(knots)] = changepoint_penalty * n / max(len(knots), 1) * 1e-3
    solver = np.linalg.solve(X.T @ X + np.diag(penalty), X.T)  # shared by every series on this grid
    raw_coef = solver @ y.T
    raw_resid = y - (X @ raw_coef).T
    positive = np.all(y > 0, axis=1)
    logs = np.log(np.where(y > 0, y, 1.0))
    log_coef = solver @ logs.T
    log_resid = logs - (X @ log_coef).T
    # Log scale (multiplicative season and growth) where it fits the raw values better.
    log_sse = np.sum((y - np.exp(logs - log_resid)) ** 2, axis=1)
    log_scale = positive & (log_sse < np.sum(raw_resid**2, axis=1))
    coef = np.where(log_scale[None, :], log_coef, raw_coef)
    resid = np.where(log_scale[:, None], log_resid, raw_resid)
    halflife = level_halflife or max(DAY_NS / step.value, 1.0)
    weights = 0.5 ** (np.arange(n)[::-1] / halflife)
    weights /= weights.sum()
    level = resid @ weights
    dof = max(n - X.shape[1], 1)
    sigma = np.sqrt(np.sum(resid**2, axis=1) / dof)
    return FourierFit(coef=coef.T, level=level, sigma=sigma, log_scale=log_scale, periods=periods, n_train=n, knots=knots)


def prefers_log(y: np.ndarray, step: pd.Timedelta) -> bool:
    """Whether a positive series is better described on the log scale (multiplicative season and growth), by the Fourier fit."""
    import numpy as np

    return bool(np.all(y > 0) and fit_fourier_many(y[None, :], step).log_scale[0])


class FourierTrend(ForecastModel):
    """Piecewise-linear trend plus daily, weekly (and yearly, with two years) Fourier seasons by least squares, with a level correction.

    A Prophet-like decomposition without changepoints, solved in closed form: thousands
    of series sharing a time grid fit in one matrix solve.
    """

    name = "fourier_trend"
    description = "trend + Fourier seasons (least squares)"

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        ds, y, step = _check_input(df, self.min_points(), self.name)
        fitted = fit_fourier_many(y[None, :], step)
        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=self.season,
            sigma=float(fitted.sigma[0]),
            predict_path=lambda h: fitted.predict(h)[0],
            log_scale=bool(fitted.log_scale[0]),
        )


# -- statsmodels --------------------------------------------------------------------------------


class HoltWinters(ForecastModel):
    """statsmodels Holt-Winters with additive trend and daily season.

    Positive series whose season scales with the level (as traffic does) are
    fitted on the log scale, so growth compounds (see :func:`prefers_log`).
    """

    name = "holt_winters"
    description = "statsmodels ExponentialSmoothing (additive trend and daily season, log scale)"

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import warnings

        import numpy as np
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        ds, y, step = _check_input(df, self.min_points(), self.name)
        log_scale = prefers_log(y, step)
        values = np.log(y) if log_scale else y
        # Daily season below a day's step; a weekly one for daily data; none otherwise.
        period = self.season if self.season >= 2 else (7 if step.value == DAY_NS and len(y) >= 28 else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = ExponentialSmoothing(
                values,
                trend="add",
                seasonal="add" if period else None,
                seasonal_periods=period,
                initialization_method="heuristic" if period else "estimated",
            ).fit(optimized=True)
        residuals = values - fitted.fittedvalues
        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=self.season,
            sigma=float(np.std(residuals)),
            predict_path=lambda h: np.asarray(fitted.forecast(h), dtype=float),
            log_scale=log_scale,
        )


class Sarimax(ForecastModel):
    """Regression with ARMA errors: trend + Fourier seasons by least squares, then statsmodels SARIMAX(1,0,1) on the residuals.

    A seasonal AR term with a period of hundreds of steps does not fit in memory, and
    SARIMAX with the Fourier terms as exogenous regressors takes tens of seconds per
    series; fitting the regression first (closed form) and the ARMA part on what it
    leaves gives the same model structure in a fraction of a second. The interval is
    SARIMAX's, around the regression path.
    """

    name = "sarimax"
    description = "statsmodels SARIMAX(1,0,1) errors around trend + Fourier seasons"
    order = (1, 0, 1)

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import warnings

        import numpy as np
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        ds, y, step = _check_input(df, self.min_points(), self.name)
        regression = fit_fourier_many(y[None, :], step)
        log_scale = bool(regression.log_scale[0])
        values = np.log(y) if log_scale else y
        n = len(y)
        design = fourier_design(np.arange(n, dtype=float), regression.periods, n, regression.knots)
        residuals = values - design @ regression.coef[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = SARIMAX(residuals, order=self.order, trend="n").fit(disp=False, maxiter=50)

        def interval(h: int, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            path = regression.predict(h)[0] - regression.level[0]  # the ARMA part carries the recent level
            pred = result.get_forecast(h)
            bounds = np.asarray(pred.conf_int(alpha=alpha))
            return path + np.asarray(pred.predicted_mean, float), path + bounds[:, 0], path + bounds[:, 1]

        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=self.season,
            sigma=float(np.std(result.resid)),
            predict_path=lambda h: interval(h, 0.2)[0],
            log_scale=log_scale,
            predict_interval=interval,
        )


# -- vectorised kernels of the auto engine, one series at a time -----------------------------------


class KernelModel(ForecastModel):
    """A model of :mod:`~include.headroom.forecasting.engine` (``KERNELS``) fitted on one series.

    Seasonal periods are found in the series (:func:`~include.headroom.forecasting.engine.detect_periods`);
    the interval is normal with the error of a one-day holdout forecast, widening with the
    square root of the seasons ahead. ``auto`` uses the same kernels on whole batches,
    with conformal intervals from its backtests.
    """

    kernel: ClassVar[str]

    def min_points(self) -> int:
        return 2 * self.season + 1

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import numpy as np

        from include.headroom.forecasting.engine import Grid, detect_periods, predict

        ds, y, step = _check_input(df, self.min_points(), self.name)
        grid = Grid(step=step, per_day=self.season, periods=detect_periods(y, self.season), start=ds[0])
        hold = max(1, min(self.season, len(y) // 4))
        check = predict(self.kernel, y[None, :-hold], grid, hold)[0]
        if not np.isfinite(check).all():
            raise ForecastError(f"{self.name}: cannot be fitted on {len(y)} points of this series")
        sigma = float(np.sqrt(np.mean((y[-hold:] - check) ** 2)))
        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=self.season,
            sigma=sigma,
            predict_path=lambda h: predict(self.kernel, y[None, :], grid, h)[0],
        )


class Ets(KernelModel):
    """AutoETS-style: SES or damped Holt on the seasonally adjusted series, parameters by AIC over a grid."""

    name = kernel = "ets"
    description = "exponential smoothing (SES / damped trend by AIC) on the series minus its daily profile"


class Theta(KernelModel):
    """The Theta method: SES plus half the linear drift, on the seasonally adjusted series."""

    name = kernel = "theta"
    description = "Theta (SES with half the linear drift), seasonally adjusted"


class Mstl(KernelModel):
    """MSTL-like: daily and weekly profiles removed in turn, exponential smoothing on the remainder."""

    name = kernel = "mstl"
    description = "multiple seasonal profiles (daily, weekly) + exponential smoothing of the remainder"


class Arima(KernelModel):
    """AR(p) with a constant (ARIMA(p,0,0)), p in 1..3 by AIC, on the seasonally adjusted series."""

    name = kernel = "arima"
    description = "AR(p) by AIC on the seasonally adjusted series (batched least squares)"


# -- Prophet ------------------------------------------------------------------------------------


def _quiet_prophet_logs() -> None:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        logger.propagate = False


class ProphetModel(ForecastModel):
    """Prophet with daily and weekly seasons; ``uncertainty_samples`` kept small for speed, intervals kept."""

    name = "prophet"
    description = "Prophet (daily + weekly seasons, 100 uncertainty samples)"
    uncertainty_samples = 100

    def min_points(self) -> int:
        return self.season + 2  # Prophet fits a daily season on a day and a bit, as seasonal naive needs

    def fit(self, df: pd.DataFrame) -> FittedForecast:
        import pandas as pd

        _quiet_prophet_logs()
        from prophet import Prophet

        ds, y, step = _check_input(df, self.min_points(), self.name)
        days = len(y) * step / pd.Timedelta(days=1)
        model = Prophet(
            daily_seasonality=step < pd.Timedelta(days=1),
            weekly_seasonality=days >= 14,
            yearly_seasonality=days >= 2 * YEAR_DAYS,
            uncertainty_samples=self.uncertainty_samples,
        )
        model.fit(pd.DataFrame({"ds": ds.tz_localize(None), "y": y}))

        def interval(h: int, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            model.interval_width = 1.0 - alpha
            future = pd.DataFrame({"ds": pd.date_range(ds[-1] + step, periods=h, freq=step).tz_localize(None)})
            out = model.predict(future)
            return out["yhat"].to_numpy(float), out["yhat_lower"].to_numpy(float), out["yhat_upper"].to_numpy(float)

        return FittedForecast(
            model=self.name,
            last_ds=ds[-1],
            step=step,
            season=self.season,
            sigma=float("nan"),
            predict_path=lambda h: interval(h, 0.2)[0],
            predict_interval=interval,
        )


MODELS: dict[str, type[ForecastModel]] = {
    cls.name: cls for cls in (SeasonalNaive, SeasonalNaiveWeekly, FourierTrend, Ets, Theta, Mstl, Arima, HoltWinters, Sarimax, ProphetModel)
}
BASELINE = SeasonalNaive.name


def get_model(name: str, season: int) -> ForecastModel:
    try:
        return MODELS[name](season=season)
    except KeyError:
        raise ForecastError(f"unknown model {name!r}; models are {sorted(MODELS)}") from None
