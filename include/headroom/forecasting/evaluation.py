"""Accuracy metrics with one signature ``(y, yhat, insample, season) -> float``, held in the ``METRICS`` registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.models import ForecastModel


def mae(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1) -> float:
    import numpy as np

    return float(np.mean(np.abs(y - yhat)))


def mape(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1) -> float:
    """Mean absolute percentage error, as a fraction; points where ``y == 0`` are left out."""
    import numpy as np

    nonzero = y != 0
    if not nonzero.any():
        return float("nan")
    return float(np.mean(np.abs((y[nonzero] - yhat[nonzero]) / y[nonzero])))


def smape(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1) -> float:
    import numpy as np

    denom = np.abs(y) + np.abs(yhat)
    ok = denom != 0
    return float(np.mean(2.0 * np.abs(y[ok] - yhat[ok]) / denom[ok])) if ok.any() else 0.0


def mase(y: np.ndarray, yhat: np.ndarray, insample: np.ndarray | None = None, season: int = 1) -> float:
    """MAE scaled by the in-sample MAE of the seasonal naive forecast."""
    import numpy as np

    if insample is None or len(insample) <= season:
        return float("nan")
    scale = float(np.mean(np.abs(insample[season:] - insample[:-season])))
    return mae(y, yhat) / scale if scale > 0 else float("nan")


METRICS: dict[str, Callable[..., float]] = {"mae": mae, "mape": mape, "smape": smape, "mase": mase}


def holdout_scores(model: ForecastModel, df: pd.DataFrame, holdout: int) -> dict[str, float]:
    """Fit ``model`` on all but the last ``holdout`` points and score its forecast of them."""
    import numpy as np

    train, test = df.iloc[:-holdout], df.iloc[-holdout:]
    fc = model.fit(train).forecast(holdout)
    y, yhat = test["y"].to_numpy(float), fc["yhat"].to_numpy(float)
    insample = train["y"].to_numpy(float)
    scores = {name: fn(y, yhat, insample, model.season) for name, fn in METRICS.items()}
    inside = (y >= fc["yhat_lower"].to_numpy()) & (y <= fc["yhat_upper"].to_numpy())
    scores["coverage"] = float(np.mean(inside))
    return scores
