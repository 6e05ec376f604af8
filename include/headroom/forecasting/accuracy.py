"""Accuracy over time: forecasts of earlier runs scored against the actuals that arrived since, and horizon bands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import coverage, mae, mape

if TYPE_CHECKING:
    import pandas as pd


def score_past_forecasts(forecasts: pd.DataFrame, actuals: pd.DataFrame, scored_at: Any) -> pd.DataFrame:
    """Forecast-vs-actual per (run, service, metric, model, days ahead) for the steps whose actuals exist.

    :param forecasts: rows of the ``forecasts`` table made by earlier runs.
    :param actuals: ``service``, ``metric``, ``ds``, ``y`` at the forecasts' step.
    :returns: rows of the ``forecast_accuracy`` table; ``horizon_days`` 1 is the first day after the run.
    """
    import numpy as np
    import pandas as pd

    columns = ["run_date", "service", "metric", "model", "horizon_days", "points", "mae", "mape", "coverage", "scored_at"]
    if forecasts.empty or actuals.empty:
        return pd.DataFrame(columns=columns)
    fc = forecasts.assign(ds=pd.to_datetime(forecasts["ds"], utc=True))
    act = actuals.assign(ds=pd.to_datetime(actuals["ds"], utc=True))
    joined = fc.merge(act[["service", "metric", "ds", "y"]], on=["service", "metric", "ds"], how="inner")
    if joined.empty:
        return pd.DataFrame(columns=columns)
    first = joined.groupby(["run_date", "service", "metric"])["ds"].transform("min")
    step = joined.groupby(["run_date", "service", "metric"])["ds"].transform(lambda s: s.diff().min() if len(s) > 1 else pd.Timedelta(0))
    run_start = first - step.fillna(pd.Timedelta(0))
    joined["horizon_days"] = np.ceil((joined["ds"] - run_start) / pd.Timedelta(days=1)).astype(int).clip(lower=1)
    rows = []
    for (run, service, metric, model, days), g in joined.groupby(["run_date", "service", "metric", "model", "horizon_days"]):
        y, yhat = g["y"].to_numpy(float), g["yhat"].to_numpy(float)
        rows.append(
            {
                "run_date": run,
                "service": service,
                "metric": metric,
                "model": model,
                "horizon_days": int(days),
                "points": len(g),
                "mae": mae(y, yhat),
                "mape": mape(y, yhat),
                "coverage": coverage(y, yhat, lower=g["yhat_lower"].to_numpy(float), upper=g["yhat_upper"].to_numpy(float)),
                "scored_at": pd.Timestamp(scored_at),
            }
        )
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class HorizonAccuracy:
    """Accuracy (1 - MAPE) of one planning horizon against its expected band."""

    horizon: str
    days: int
    resample: str
    model: str
    accuracy: float
    band: tuple[float, float]

    @property
    def meets_band(self) -> bool:
        return self.accuracy >= self.band[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "days": self.days,
            "resample": self.resample,
            "model": self.model,
            "accuracy": round(self.accuracy, 4),
            "band": list(self.band),
            "meets_band": self.meets_band,
        }


def horizon_accuracy(daily: pd.DataFrame, horizons: Mapping[str, Mapping[str, Any]], model: str = "fourier_trend") -> list[HorizonAccuracy]:
    """For each planning horizon: resample ``daily`` (``ds``, ``y``), hold out the horizon's shortest period, score 1 - MAPE.

    :raises ForecastError: when the history does not leave a training window at least as long as the horizon.
    """
    import pandas as pd

    from include.headroom.forecasting.models import get_model

    series = daily.set_index(pd.DatetimeIndex(pd.to_datetime(daily["ds"], utc=True)))["y"].astype(float)
    out = []
    for name, spec in horizons.items():
        rule = str(spec.get("resample", "1D"))
        days = int(spec["period_days"][0])
        y = series.resample(rule).mean().dropna()
        step_days = pd.Timedelta(rule) / pd.Timedelta(days=1)
        holdout = max(1, int(round(days / step_days)))
        if len(y) - holdout < holdout:
            raise ForecastError(
                f"horizon {name!r}: {len(y)} {rule} points cannot hold out {holdout} and still train on as many; give a longer history"
            )
        frame = pd.DataFrame({"ds": y.index, "y": y.to_numpy()})
        train, test = frame.iloc[:-holdout], frame.iloc[-holdout:]
        per_day = max(1, int(round(1 / step_days)))
        fc = get_model(model, per_day).fit(train).forecast(holdout)
        accuracy = 1.0 - mape(test["y"].to_numpy(float), fc["yhat"].to_numpy(float))
        lo, hi = spec["expected_accuracy"]
        out.append(HorizonAccuracy(name, days, rule, model, float(accuracy), (float(lo), float(hi))))
    return out


def fleet_horizon_bands(
    daily: pd.DataFrame, horizons: Mapping[str, Mapping[str, Any]], model: str = "fourier_trend"
) -> dict[str, dict[str, Any]]:
    """Per planning horizon over many series (``ds``, ``service``, ``y``): median accuracy and how many series meet the band."""
    import numpy as np

    per: dict[str, list[HorizonAccuracy]] = {}
    for _, frame in daily.groupby("service"):
        for h in horizon_accuracy(frame[["ds", "y"]], horizons, model):
            per.setdefault(h.horizon, []).append(h)
    return {
        name: {
            "days": hs[0].days,
            "resample": hs[0].resample,
            "band": list(hs[0].band),
            "model": model,
            "median_accuracy": round(float(np.median([h.accuracy for h in hs])), 4),
            "meets": sum(h.meets_band for h in hs),
            "series": len(hs),
            "meets_band": bool(np.median([h.accuracy for h in hs]) >= hs[0].band[0]),
        }
        for name, hs in per.items()
    }
