"""Medium (12 months, daily) and long (3 years, weekly) capacity plans of the load, with their accuracy band and scenarios.

SPEC section 4's planning horizons beyond the daily 30-day forecast. Per service, from the
daily means of the load metric:

- each horizon (``horizons:`` in ``forecasting.yaml``, except ``short``, which the hourly
  forecast covers) resamples the history to its step (``1D`` medium, ``7D`` long) and
  forecasts ``period_days[1]`` ahead with the trend + Fourier seasons model, every series
  of a batch on one grid in one solve;
- its accuracy is measured as the horizon's own figure: 1 - MAPE on the last
  ``period_days[0]`` of the history held out (it needs twice that much history; with less
  the accuracy is left empty and the reason says how much is needed), and compared with the
  horizon's ``expected_accuracy`` band;
- the band around the plan is ``yhat x (1 -/+ e)``: ``e`` the measured MAPE but at least
  the error the band allows at best (1 - its upper bound), or, when it could not be
  measured, the error the band allows at worst (1 - its lower bound);
- every configured scenario (launch, organic growth) reshapes the plan, each a set of rows
  of its own beside ``baseline``, with the replicas it needs (unclipped, so a plan above the
  max is visible).

Rows go to the ``capacity_plans`` table, one per (service, metric, horizon, scenario, step).
A series with too short a history gets one row with status ``insufficient_history`` and the
reason, never a guessed plan.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig, Service

PLAN_HORIZONS = ("medium", "long")
BASELINE = "baseline"
MODEL = "fourier_trend"
MIN_POINTS = 8  # the fewest steps of history a plan is fitted on (two Fourier seasons need more; the fit drops them)


def _paths(matrix: Any, step: pd.Timedelta, horizon: int) -> Any:
    """Point paths of the plan model for every row of ``matrix`` (NaN rows where it cannot fit)."""
    from include.headroom.forecasting.engine import Grid, predict

    return predict(MODEL, matrix, Grid(step=step, per_day=1, periods=()), horizon)


def capacity_plans(config: HeadroomConfig, services: Sequence[Service], daily: pd.DataFrame, run_date: str,
                   metric: str = "throughput", now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Plan rows for ``services`` from ``daily`` (``service``, ``ds`` a UTC day, ``y`` the day's mean of ``metric``).

    :param now: the run's time; the plans start at its day (default: the day after the newest daily mean).
    """
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.accuracy import mape
    from include.headroom.forecasting.capacity import capacity_limit, first_crossing, replicas_needed, scenario_factor
    from include.headroom.timeutil import utc

    fc_cfg = config.forecasting
    by_name = {s.name: s for s in services}
    wide = (daily.assign(ds=pd.to_datetime(daily["ds"], utc=True)).pivot_table(index="ds", columns="service", values="y", aggfunc="mean")
            if len(daily) else pd.DataFrame())
    rows: list[pd.DataFrame] = []
    columns: dict[str, list[Any]] = {}  # plan rows gathered as arrays, one frame at the end

    def add(n: int, **values: Any) -> None:
        for key, value in values.items():
            columns.setdefault(key, []).append(np.broadcast_to(np.asarray(value, dtype=object if isinstance(value, str) else None), (n,)))
    for horizon in PLAN_HORIZONS:
        spec = fc_cfg.horizons.get(horizon)
        if spec is None:
            continue
        rule = str(spec.get("resample", "1D"))
        step = pd.Timedelta(rule)
        step_days = step / pd.Timedelta(days=1)
        ahead = int(math.ceil(float(spec["period_days"][-1]) / step_days))
        holdout = max(1, int(round(float(spec["period_days"][0]) / step_days)))
        lo_band, hi_band = (float(x) for x in spec["expected_accuracy"])
        base = {"run_date": run_date, "metric": metric, "horizon": horizon, "resample": rule, "model": MODEL,
                "band_low": lo_band, "band_high": hi_band}
        grids: dict[tuple[pd.Timestamp, int], list[tuple[str, np.ndarray]]] = {}
        resampled = wide.resample(rule).mean() if len(wide) else wide
        for name in by_name:
            y = resampled[name].dropna() if name in resampled.columns else pd.Series(dtype=float)
            if len(y) < MIN_POINTS:
                when = utc(now).floor("D") if now is not None else pd.Timestamp(f"{run_date}T00:00Z")
                rows.append(pd.DataFrame([{**base, "service": name, "scenario": BASELINE, "ds": when, "status": "insufficient_history",
                                           "reason": f"{len(y)} {rule} means of {metric}, {MIN_POINTS} needed for a {horizon} plan"}]))
                continue
            grids.setdefault((y.index[0], len(y)), []).append((name, y.to_numpy(float)))
        for (start, n), members in grids.items():
            names = [m[0] for m in members]
            matrix = np.vstack([m[1] for m in members])
            path = _paths(matrix, step, ahead)
            measured = np.full(len(names), np.nan)
            if n - holdout >= holdout:  # accuracy as horizon_accuracy measures it: the horizon's shortest period held out
                held = _paths(matrix[:, :-holdout], step, holdout)
                measured = np.array([1.0 - mape(matrix[i, -holdout:], held[i]) if np.isfinite(held[i]).all() else np.nan
                                     for i in range(len(names))])
            ds = pd.date_range(start + n * step, periods=ahead, freq=step)
            run_start = utc(now) if now is not None else ds[0] - step
            ds_series, ds_values = pd.Series(ds), ds.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
            factors = {sc.name: scenario_factor(sc, ds_series, run_start) for sc in fc_cfg.scenarios if metric in sc.metrics}
            for i, name in enumerate(names):
                svc = by_name[name]
                if not np.isfinite(path[i]).all():
                    rows.append(pd.DataFrame([{**base, "service": name, "scenario": BASELINE, "ds": ds[0], "status": "failed",
                                               "reason": f"the {MODEL} model could not fit {n} {rule} points"}]))
                    continue
                accuracy = float(measured[i])
                # Never narrower than the best accuracy the horizon's band allows: a perfect holdout does not make the future certain.
                err = min(max(1.0 - accuracy, 1.0 - hi_band), 1.0) if accuracy == accuracy else 1.0 - lo_band
                if accuracy == accuracy:
                    status, reason = ("meets_band" if accuracy >= lo_band else "below_band"), ""
                else:
                    status = "ok"
                    reason = (f"accuracy not measured: {n} {rule} points, {2 * holdout} needed to hold out {holdout}; "
                              f"band from the expected accuracy {lo_band:.2f}")
                yhat = np.maximum(path[i], 0.0) if (matrix[i] >= 0).all() else path[i]
                limit = capacity_limit(config, svc, metric)
                for scenario in (None, *[s for s in fc_cfg.scenarios if metric in s.metrics]):
                    factor = np.ones(ahead) if scenario is None else factors[scenario.name]
                    shaped = yhat * factor
                    crossing = first_crossing(ds_series, shaped, limit)
                    add(ahead, **base, service=name, scenario=BASELINE if scenario is None else scenario.name, ds=ds_values,
                        yhat=shaped, yhat_lower=shaped * (1.0 - err), yhat_upper=shaped * (1.0 + err),
                        replicas=replicas_needed(shaped, config, svc) if metric == "throughput" else np.nan,
                        capacity_limit=limit, accuracy=accuracy, status=status, reason=reason,
                        saturation_at=np.datetime64("NaT", "ns") if crossing is None else crossing.to_datetime64())
    if columns:
        frame = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
        for col in ("ds", "saturation_at"):
            frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC")
        rows.append(frame)
    if not rows:
        from include.headroom.metrics.schema import table

        return pd.DataFrame(columns=list(table("capacity_plans").columns))
    return pd.concat(rows, ignore_index=True)


def plan_summary(plans: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (horizon, scenario) of one service's plan rows: where the plan ends, its peak, replicas, saturation, accuracy and band."""
    import numpy as np
    import pandas as pd

    out = []
    if plans is None or plans.empty:
        return out
    order = {h: i for i, h in enumerate(PLAN_HORIZONS)}

    def rank(item: tuple[tuple[str, str], Any]) -> tuple[int, bool, str]:
        (horizon, scenario), _ = item
        return order.get(horizon, len(order)), scenario != BASELINE, scenario

    for (horizon, scenario), g in sorted(plans.groupby(["horizon", "scenario"]), key=rank):
        g = g.sort_values("ds")
        first = g.iloc[0]
        ok = g["yhat"].notna()
        accuracy = first["accuracy"]
        out.append({
            "horizon": horizon, "scenario": scenario, "metric": first["metric"], "resample": first["resample"], "model": first["model"],
            "status": first["status"], "reason": first["reason"],
            "until": g.loc[ok, "ds"].iloc[-1] if ok.any() else None,
            "yhat_end": float(g.loc[ok, "yhat"].iloc[-1]) if ok.any() else None,
            "yhat_lower_end": float(g.loc[ok, "yhat_lower"].iloc[-1]) if ok.any() else None,
            "yhat_upper_end": float(g.loc[ok, "yhat_upper"].iloc[-1]) if ok.any() else None,
            "peak": float(g.loc[ok, "yhat"].max()) if ok.any() else None,
            "replicas_peak": float(np.nanmax(g["replicas"])) if g["replicas"].notna().any() else None,
            "saturation_at": first["saturation_at"] if pd.notna(first["saturation_at"]) else None,
            "accuracy": float(accuracy) if accuracy == accuracy else None,
            "band": [float(first["band_low"]), float(first["band_high"])],
        })
    return out
