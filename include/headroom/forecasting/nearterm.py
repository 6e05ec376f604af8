"""Near-term forecasts for the predicted bottlenecks: response time one hour ahead, at the metrics' own 5-minute step.

The daily capacity forecast is hourly and made at 02:00; a latency crossing within the next
hour needs a forecast made now from the newest points. At each analysis, every service's
``response_time`` of the last ``HISTORY_DAYS`` days goes through the same ``auto`` engine as
the capacity forecast (outliers, seasonality found per series, breaks, rolling-origin
backtests over one-hour origins, best-k combination, conformal intervals), the batch on one
grid in one run. The forecast is trusted, as the capacity forecasts are, when its backtest
MAPE is within ``accuracy_gate_mape``; ``bottlenecks.analysis.predicted_findings`` then reads
``P(response time > the tier's latency SLO)`` from its interval over the horizon of
``bottlenecks.prediction.horizons_s.response_time`` (1 h).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.config import HeadroomConfig

NEARTERM_METRICS = ("response_time",)
STEP = "5min"
HISTORY_DAYS = 2  # two days: seasonal naive (same time yesterday) can compete; three were less accurate on the sample fleet
ORIGINS = 5


def _slot_means(points: pd.DataFrame, names: Sequence[str], step: pd.Timedelta) -> dict[str, tuple[pd.Timestamp, np.ndarray]]:
    """Per service of ``names`` with points: its first slot and its ``step`` slot means from its first to its last point.

    The same series as :func:`~include.headroom.forecasting.capacity.series_by_metric` (empty slots inside
    filled linearly), for every service at once: one ``bincount`` over (service, slot).
    """
    import numpy as np
    import pandas as pd

    if not len(points):
        return {}
    codes = pd.Categorical(points["service"], categories=list(names)).codes.astype(np.int64)
    keep = codes >= 0
    slot = pd.DatetimeIndex(points["ts"]).tz_convert("UTC").as_unit("ns").asi8[keep] // step.value
    codes, values = codes[keep], points["value"].to_numpy(float)[keep]
    if not len(slot):
        return {}
    base = int(slot.min())
    span = int(slot.max()) - base + 1
    flat = codes * span + (slot - base)
    sums = np.bincount(flat, weights=values, minlength=len(names) * span).reshape(len(names), span)
    counts = np.bincount(flat, minlength=len(names) * span).reshape(len(names), span)
    out = {}
    for i in np.flatnonzero(counts.any(axis=1)):
        have = np.flatnonzero(counts[i])
        lo, hi = int(have[0]), int(have[-1]) + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            y = sums[i, lo:hi] / counts[i, lo:hi]
        if len(have) < hi - lo:  # empty slots inside: linear between their neighbours
            y = np.interp(np.arange(lo, hi), have, y[have - lo])
        out[names[i]] = (pd.Timestamp((base + lo) * step.value, tz="UTC"), y)
    return out


def nearterm_forecasts(config: HeadroomConfig, metrics: pd.DataFrame, services: Sequence[str], as_of: pd.Timestamp,
                       names: Sequence[str] = NEARTERM_METRICS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Capacity-like rows (``service``, ``metric``, ``status``, ``trusted``, ``mape``, ...) and forecast rows for ``names``.

    Every service's series is cut from ``metrics`` in one pass, and the services on one time grid
    (usually all of them) go through the engine together.

    :param metrics: raw points (``service``, ``metric``, ``ts``, ``value``) before ``as_of``.
    :returns: ``(capacity, forecasts)``; a series too short for one backtest gets a capacity row with status
        ``insufficient_history`` and no forecast.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.exceptions import ForecastError
    from include.headroom.forecasting.engine import EngineSpec, run_engine
    from include.headroom.timeutil import utc

    fc_cfg = config.forecasting
    now = utc(as_of)
    step = pd.Timedelta(STEP)
    per_day = int(pd.Timedelta(days=1) / step)
    horizons = config.bottlenecks.prediction.get("horizons_s", {})
    run_date = f"{now:%Y-%m-%d}"
    cap_rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    services = list(services)
    recent = metrics[(metrics["ts"] >= now - pd.Timedelta(days=HISTORY_DAYS)) & (metrics["ts"] < now)] if len(metrics) else metrics
    for metric in names:
        horizon = max(1, int(math.ceil(float(horizons.get(metric, horizons.get("bottleneck", 7200))) / step.total_seconds())))
        spec = EngineSpec(candidates=tuple(fc_cfg.models), horizon=horizon, origins=ORIGINS, every=horizon, min_train=per_day + 1,
                          top_k=fc_cfg.backtest.top_k, combine=fc_cfg.backtest.combine, guard_ratio=fc_cfg.backtest.guard_ratio,
                          combine_within=fc_cfg.backtest.combine_within, outlier_z=fc_cfg.outlier_z, break_z=fc_cfg.break_z,
                          trend_z=fc_cfg.trend_z)
        needed = per_day + 1 + horizon + horizon * (ORIGINS - 1)
        series = _slot_means(recent[recent["metric"] == metric] if len(recent) else recent, services, step)
        grids: dict[tuple[pd.Timestamp, int], list[tuple[str, np.ndarray]]] = {}
        for name in services:
            first, y = series.get(name, (None, np.empty(0)))
            if len(y) < needed:
                cap_rows.append({"run_date": run_date, "service": name, "metric": metric, "model": "", "trusted": False,
                                 "saturation_at": pd.NaT, "saturation_at_upper": pd.NaT, "saturation_probability": 0.0,
                                 "status": "insufficient_history", "mape": float("nan"),
                                 "reason": f"{len(y)} {STEP} points of {metric} in the last {HISTORY_DAYS} days, {needed} needed"})
                continue
            grids.setdefault((first, len(y)), []).append((name, y))
        for (start, n), members in grids.items():
            values = np.vstack([m[1] for m in members])
            try:
                out = run_engine(values, step, horizon, spec, fc_cfg.alpha, start=start)
            except ForecastError as exc:
                cap_rows += [{"run_date": run_date, "service": name, "metric": metric, "model": "", "trusted": False, "status": "failed",
                              "reason": str(exc), "mape": float("nan"), "saturation_at": pd.NaT, "saturation_at_upper": pd.NaT,
                              "saturation_probability": 0.0} for name, _ in members]
                continue
            for j, (name, _) in enumerate(members):
                row = out.rows[j]
                mape = row.chosen_scores["mape"]
                trusted = bool(math.isfinite(mape) and mape <= fc_cfg.accuracy_gate_mape)
                cap_rows.append({"run_date": run_date, "service": name, "metric": metric, "model": row.model, "trusted": trusted,
                                 "status": "ok", "mape": mape, "saturation_at": pd.NaT, "saturation_at_upper": pd.NaT,
                                 "saturation_probability": 0.0,
                                 "reason": "" if trusted else f"backtest MAPE {mape:.3f} above the gate {fc_cfg.accuracy_gate_mape}"})
            # One frame per grid: every member's horizon, member after member.
            ds = pd.date_range(start + n * step, periods=horizon, freq=step)
            frames.append(pd.DataFrame({
                "run_date": run_date, "service": np.repeat([m[0] for m in members], horizon), "metric": metric,
                "model": np.repeat([r.model for r in out.rows], horizon), "ds": np.tile(ds, len(members)),
                "yhat": out.yhat.ravel(), "yhat_lower": np.maximum(out.yhat_lower, 0.0).ravel(), "yhat_upper": out.yhat_upper.ravel()}))
    forecasts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run_date", "service", "metric", "model", "ds", "yhat", "yhat_lower", "yhat_upper"])
    return pd.DataFrame(cap_rows), forecasts


def with_nearterm(config: HeadroomConfig, metrics: pd.DataFrame, services: Sequence[str], as_of: pd.Timestamp, capacity: pd.DataFrame,
                  forecasts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest capacity rows and forecasts with each near-term metric's rows replaced by a forecast made at ``as_of``."""
    import pandas as pd

    near_cap, near_fc = nearterm_forecasts(config, metrics, services, as_of)
    names = list(NEARTERM_METRICS)
    keep_cap = capacity[~capacity["metric"].isin(names)] if len(capacity) else capacity
    keep_fc = forecasts[~forecasts["metric"].isin(names)] if len(forecasts) else forecasts
    cap = pd.concat([f for f in (keep_cap, near_cap) if len(f)], ignore_index=True) if len(keep_cap) or len(near_cap) else capacity
    fc = pd.concat([f for f in (keep_fc, near_fc) if len(f)], ignore_index=True) if len(keep_fc) or len(near_fc) else forecasts
    return cap, fc
