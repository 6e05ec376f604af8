"""Forecast one series from a CSV file (``timestamp,value``): what ``python -m include.headroom forecast`` runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.headroom.forecasting.settings import ForecastConfig
from include.headroom.exceptions import ForecastError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.forecasting.engine import RowResult

OUTPUT_COLUMNS = ("timestamp", "yhat", "yhat_lower", "yhat_upper")


JITTER_SHARE = 0.1  # a timestamp within this share of a step of the grid is moved onto it
MAX_MISSING_SHARE = 0.5  # more of the grid missing than this: an error, not an interpolation


def read_series_csv(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """Read ``timestamp,value`` into a sorted ``ds``, ``y`` frame at a regular, inferred frequency.

    Real-world quirks are taken and counted in ``frame.attrs["input"]``: time zones (any
    offsets, converted to UTC), duplicate timestamps (their values averaged), jitter
    (timestamps within a tenth of a step of the grid are moved onto it) and gaps (filled
    by linear interpolation, up to half of the grid).

    :returns: the frame and whether the timestamps carried no time zone (read as UTC).
    :raises ForecastError: naming the file, row (file line) and field for missing columns, an empty file,
        unreadable timestamps, non-numeric values, timestamps off the grid, or too many gaps.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.seriesfile import read_timestamp_value_csv

    path = Path(path)
    raw, ds, line = read_timestamp_value_csv(path, ForecastError)
    if raw.empty:
        raise ForecastError(f"{path}: no data rows below the header; a forecast needs a history of many regular steps")
    stamps = raw["timestamp"].str.strip()
    y = pd.to_numeric(raw["value"].str.strip(), errors="coerce")
    bad = (y.isna() | ~np.isfinite(y.fillna(0.0))).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ForecastError(f"{path}: line {line[i]}: field 'value' = {raw['value'].iloc[i]!r} is not a number "
                            f"({int(bad.sum())} such rows); fill or drop them first")
    naive = pd.Timestamp(stamps.iloc[0]).tzinfo is None
    frame = pd.DataFrame({"ds": ds.dt.as_unit("ns"), "y": y.astype(float), "line": line}).sort_values("ds", kind="stable")
    frame = frame.reset_index(drop=True)
    distinct = frame["ds"].drop_duplicates()
    if len(distinct) < 3:
        raise ForecastError(f"{path}: {len(distinct)} distinct timestamps; a forecast needs a history of many regular steps")
    steps = np.diff(pd.DatetimeIndex(distinct).asi8)
    step = int(np.median(steps))
    # Jitter: each timestamp to the nearest step of the grid that starts at the first one.
    t = pd.DatetimeIndex(frame["ds"]).asi8
    k = np.rint((t - t[0]) / step).astype(np.int64)
    off = np.abs(t - (t[0] + k * step)) > JITTER_SHARE * step
    if off.any():
        i = int(np.flatnonzero(off)[0])
        prev = frame["ds"].iloc[i - 1] if i else frame["ds"].iloc[i]
        raise ForecastError(
            f"{path}: line {frame['line'].iloc[i]}: timestamps are irregular: {prev.isoformat()} -> "
            f"{frame['ds'].iloc[i].isoformat()} is not the inferred step {pd.Timedelta(step)} ({int(off.sum())} timestamps off the grid "
            f"by more than {JITTER_SHARE:.0%} of a step); resample to a fixed frequency first"
        )
    jittered = int(np.sum(t != t[0] + k * step))
    grouped = frame.assign(k=k).groupby("k", sort=True)["y"].agg(["mean", "size"])
    duplicates = int((grouped["size"] - 1).sum())
    full = np.arange(int(grouped.index.max()) + 1)
    values = grouped["mean"].reindex(full)
    gaps = int(values.isna().sum())
    if gaps > MAX_MISSING_SHARE * len(full):
        run = values.isna().astype(int).groupby(values.notna().cumsum()).sum()
        raise ForecastError(f"{path}: {gaps} of {len(full)} steps of {pd.Timedelta(step)} are missing "
                            f"(the longest gap is {int(run.max())} steps); too sparse to fill, give a denser history")
    values = values.interpolate(limit_direction="both")
    out = pd.DataFrame({"ds": pd.DatetimeIndex(t[0] + full * step, tz="UTC"), "y": values.to_numpy(float)})
    out.attrs["input"] = {"rows": len(frame), "duplicates_averaged": duplicates, "timestamps_moved_onto_grid": jittered,
                          "gaps_filled": gaps}
    return out, naive


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
    """The forecast of one series and how it was made (``detail`` for ``auto``)."""

    forecast: pd.DataFrame
    model: str
    step: pd.Timedelta
    detail: RowResult | None
    data_points: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: finite numbers rounded, and ``null`` where a score does not exist (never a ``NaN`` token)."""
        out: dict[str, Any] = {"model": self.model, "step": str(self.step), "steps": len(self.forecast), "data_points": self.data_points,
                               **self.notes}
        if self.detail is not None:
            d = self.detail
            out.update({"members": list(d.members), "weights": list(d.weights), "seasonal_periods": list(d.periods),
                        "level_shifts_at": list(d.breaks), "trend_breaks_at": list(d.trend_breaks), "outliers_replaced": d.outliers,
                        "scores": {n: {k: _finite(v) for k, v in sc.items()} for n, sc in d.scores.items()}})
        return out


def _finite(v: Any) -> Any:
    return (round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v


def forecast_series(
    df: pd.DataFrame, horizon: str, config: ForecastConfig, model: str = "auto", alpha: float | None = None,
) -> SeriesForecast:
    """Forecast ``df`` (``ds``, ``y``) ``horizon`` ahead at its own step.

    ``model="auto"`` runs the batch engine on this one series (outliers, seasonality,
    breaks, rolling-origin backtests of the configured candidates, combination of the
    best, conformal intervals); a named model is fitted directly with its own interval.

    :raises ForecastError: for an unknown model, a bad horizon, or too short a history (saying how much is needed).
    """
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.engine import run_engine, spec_for
    from include.headroom.forecasting.models import MODELS, get_model
    from include.headroom.forecasting.preprocess import replace_outliers

    if model != "auto" and model not in MODELS:
        raise ForecastError(f"unknown model {model!r}; models are {['auto', *sorted(MODELS)]}")
    alpha = config.alpha if alpha is None else alpha
    if not 0 < alpha < 1:
        raise ForecastError(f"alpha={alpha!r} must be in (0, 1), e.g. 0.2 for an 80 % interval")
    step = pd.Timedelta(df["ds"].iloc[1] - df["ds"].iloc[0])
    steps = horizon_steps(horizon, step)
    per_day = max(1, int(round(pd.Timedelta(days=1) / step)))
    notes = dict(df.attrs.get("input", {}))
    if model == "auto":
        spec = spec_for(config, per_day, steps, len(df))
        needed = spec.min_train + spec.horizon
        if len(df) < needed:
            raise ForecastError(
                f"history too short: {len(df)} points of {step} ({len(df) * step}); model 'auto' needs at least {needed} "
                f"({needed * step}: {spec.min_train} to train plus {spec.horizon} to backtest). Give a longer history or choose a model"
            )
        result = run_engine(df["y"].to_numpy(float)[None, :], step, steps, spec, alpha, start=pd.Timestamp(df["ds"].iloc[0]))
        row = result.rows[0]
        ds = pd.date_range(pd.Timestamp(df["ds"].iloc[-1]) + step, periods=steps, freq=step)
        forecast = pd.DataFrame({"ds": ds, "yhat": result.yhat[0], "yhat_lower": result.yhat_lower[0], "yhat_upper": result.yhat_upper[0]})
        return SeriesForecast(forecast=forecast, model=row.model, step=step, detail=row, data_points=len(df), notes=notes)
    chosen = get_model(model, per_day)
    if len(df) < chosen.min_points():
        raise ForecastError(f"history too short: {len(df)} points of {step}; model {model!r} needs at least {chosen.min_points()} "
                            f"({chosen.min_points() * step}). Give a longer history")
    replaced = 0
    if config.outlier_z > 0:
        season = 7 * per_day if len(df) >= 3 * 7 * per_day else per_day
        cleaned, replaced = replace_outliers(df["y"].to_numpy(float), season, config.outlier_z)
        df = df.assign(y=cleaned)
    with np.errstate(all="ignore"):
        forecast = chosen.fit(df).forecast(steps, alpha)
    return SeriesForecast(forecast=forecast, model=model, step=step, detail=None, data_points=len(df),
                          notes={**notes, "outliers_replaced": replaced})


def write_forecast_csv(forecast: pd.DataFrame, path: str | Path, naive: bool) -> Path:
    """Write ``timestamp,yhat,yhat_lower,yhat_upper``; timestamps without a zone when the input had none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = forecast["ds"].dt.tz_convert("UTC")
    stamps = ds.dt.tz_localize(None) if naive else ds
    out = forecast.assign(timestamp=stamps.map(lambda t: t.isoformat()))[list(OUTPUT_COLUMNS)]
    out.to_csv(path, index=False, float_format="%.6f")
    return path
