"""Forecast one series from a CSV file (``timestamp,value``): what ``python -m include.headroom forecast`` runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.headroom.config import ForecastConfig
from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.forecasting.evaluation import Selection

CSV_COLUMNS = ("timestamp", "value")
OUTPUT_COLUMNS = ("timestamp", "yhat", "yhat_lower", "yhat_upper")


def read_series_csv(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """Read ``timestamp,value`` into a sorted ``ds``, ``y`` frame at a regular, inferred frequency.

    :returns: the frame and whether the timestamps carried no time zone (read as UTC).
    :raises ForecastError: naming the file, row (file line) and field for missing columns, unreadable
        timestamps, non-numeric values, duplicates or an irregular step.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ForecastError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ForecastError(f"{path}: not a readable CSV file ({exc})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise ForecastError(f"{path}: columns {missing} are missing (got {list(raw.columns)}); the file needs a header 'timestamp,value'")
    line = np.arange(len(raw)) + 2  # the header is line 1
    stamps = raw["timestamp"].str.strip()
    ds = pd.to_datetime(stamps, errors="coerce", utc=True, format="ISO8601")
    bad = ds.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ForecastError(f"{path}: line {line[i]}: field 'timestamp' = {raw['timestamp'].iloc[i]!r} is not a timestamp "
                            f"({int(bad.sum())} such rows); use ISO 8601, e.g. 2026-11-01T13:00:00Z")
    y = pd.to_numeric(raw["value"].str.strip(), errors="coerce")
    bad = (y.isna() | ~np.isfinite(y.fillna(0.0))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ForecastError(f"{path}: line {line[i]}: field 'value' = {raw['value'].iloc[i]!r} is not a number "
                            f"({int(bad.sum())} such rows); fill or drop them first")
    naive = pd.Timestamp(stamps.iloc[0]).tzinfo is None  # parsed above, so it reads
    frame = pd.DataFrame({"ds": ds, "y": y.astype(float), "line": line}).sort_values("ds", kind="stable").reset_index(drop=True)
    dupes = frame["ds"].duplicated().to_numpy()
    if dupes.any():
        i = int(np.flatnonzero(dupes)[0])
        raise ForecastError(f"{path}: line {frame['line'].iloc[i]}: timestamp {frame['ds'].iloc[i].isoformat()} appears more than once")
    if len(frame) < 3:
        raise ForecastError(f"{path}: {len(frame)} rows; a forecast needs a history of many regular steps")
    steps = np.diff(pd.DatetimeIndex(frame["ds"]).as_unit("ns").asi8)
    step = int(np.median(steps))
    off = np.flatnonzero(steps != step)
    if len(off):
        i = int(off[0]) + 1
        raise ForecastError(
            f"{path}: line {frame['line'].iloc[i]}: timestamps are irregular: {frame['ds'].iloc[i - 1].isoformat()} -> "
            f"{frame['ds'].iloc[i].isoformat()} is not the inferred step {pd.Timedelta(step)} ({len(off)} irregular steps); "
            "resample to a fixed frequency first"
        )
    return frame[["ds", "y"]], naive


def horizon_steps(horizon: str, step: pd.Timedelta) -> int:
    """How many steps of ``step`` cover ``horizon`` (a pandas duration such as ``7D``, ``12h``, ``90min``)."""
    import pandas as pd

    try:
        span = pd.Timedelta(horizon)
    except (ValueError, TypeError):
        raise ForecastError(f"horizon {horizon!r} is not a duration; use e.g. 7D, 12h or 90min") from None
    if span < step:
        raise ForecastError(f"horizon {horizon!r} is shorter than one step of the series ({step})")
    return int(math.ceil(span / step))


@dataclass(frozen=True)
class SeriesForecast:
    """The forecast of one series and how it was made."""

    forecast: pd.DataFrame
    model: str
    step: pd.Timedelta
    selection: Selection | None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "step": str(self.step), "steps": len(self.forecast)}
        if self.selection is not None:
            out["data_points"] = self.selection.data_points
            out["scores"] = {n: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
                             for n, s in self.selection.scores.items()}
        return out


def forecast_series(df: pd.DataFrame, horizon: str, config: ForecastConfig, model: str = "auto", alpha: float | None = None) -> SeriesForecast:
    """Forecast ``df`` (``ds``, ``y``) ``horizon`` ahead at its own step; ``model="auto"`` backtests the configured candidates.

    :raises ForecastError: for an unknown model, a bad horizon, or too short a history (saying how much is needed).
    """
    import pandas as pd

    from include.headroom.forecasting.evaluation import BacktestSpec, select_model
    from include.headroom.forecasting.models import MODELS, get_model

    if model != "auto" and model not in MODELS:
        raise ForecastError(f"unknown model {model!r}; models are {['auto', *sorted(MODELS)]}")
    alpha = config.alpha if alpha is None else alpha
    if not 0 < alpha < 1:
        raise ForecastError(f"alpha={alpha!r} must be in (0, 1), e.g. 0.2 for an 80 % interval")
    step = pd.Timedelta(df["ds"].iloc[1] - df["ds"].iloc[0])
    steps = horizon_steps(horizon, step)
    per_day = max(1, int(round(pd.Timedelta(days=1) / step)))
    selection = None
    if model == "auto":
        bt = config.backtest
        spec = BacktestSpec(initial=max(2 * per_day, int(bt.initial_days * per_day)),
                            period=max(1, int(bt.period_days * per_day)),
                            horizon=max(1, min(steps, int(bt.horizon_days * per_day))), max_cutoffs=bt.max_cutoffs)
        needed = spec.initial + spec.horizon
        if len(df) < needed:
            raise ForecastError(
                f"history too short: {len(df)} points of {step} ({len(df) * step}); model 'auto' needs at least {needed} "
                f"({needed * step}: {spec.initial} to train plus {spec.horizon} to backtest). Give a longer history or choose a model"
            )
        selection = select_model(df, config.models, per_day, spec, alpha)
        model = selection.chosen
    chosen = get_model(model, per_day)
    if len(df) < chosen.min_points():
        raise ForecastError(f"history too short: {len(df)} points of {step}; model {model!r} needs at least {chosen.min_points()} "
                            f"({chosen.min_points() * step}). Give a longer history")
    forecast = chosen.fit(df).forecast(steps, alpha)
    return SeriesForecast(forecast=forecast, model=model, step=step, selection=selection)


def write_forecast_csv(forecast: pd.DataFrame, path: str | Path, naive: bool) -> Path:
    """Write ``timestamp,yhat,yhat_lower,yhat_upper``; timestamps without a zone when the input had none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = forecast["ds"].dt.tz_convert("UTC")
    stamps = ds.dt.tz_localize(None) if naive else ds
    out = forecast.assign(timestamp=stamps.map(lambda t: t.isoformat()))[list(OUTPUT_COLUMNS)]
    out.to_csv(path, index=False, float_format="%.6f")
    return path
