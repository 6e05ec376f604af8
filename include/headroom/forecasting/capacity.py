"""Capacity forecasts: pick the best model by backtest, then time-to-saturation, replicas needed, cost and scenarios."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.catalog import HOURS_PER_MONTH, Service
from include.headroom.config import HeadroomConfig
from include.headroom.forecasting.settings import Scenario
from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import BacktestSpec, select_model
from include.headroom.forecasting.models import get_model
from include.headroom.forecasting.preprocess import replace_outliers
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.engine import RowResult

LOAD_METRIC = "throughput"


@dataclass(frozen=True)
class CapacityForecast:
    """The forecast frame, the capacity row and the scenario rows for one (service, metric).

    The forecast is held as its columns (``columns``: scalars for the text columns, arrays for the
    rest) and made a frame only when ``forecast`` is read: a batch concatenates the columns of all
    its series into one frame (:func:`forecast_frame`) instead of building a frame per series.
    """

    columns: dict[str, Any]
    capacity: dict[str, Any]
    scenarios: list[dict[str, Any]] = field(default_factory=list)

    @property
    def points(self) -> int:
        """How many forecast steps (0 when the series was not forecast)."""
        return len(self.columns["ds"]) if self.columns else 0

    @property
    def forecast(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns)


def forecast_frame(results: Sequence[CapacityForecast]) -> pd.DataFrame:
    """The forecasts of ``results`` as one frame (the rows of each, in order; the same as concatenating their ``forecast``)."""
    import numpy as np
    import pandas as pd

    done = [r for r in results if r.points]
    if not done:
        return pd.DataFrame()
    names = list(done[0].columns)
    counts = [r.points for r in done]
    out: dict[str, Any] = {}
    for name in names:
        values = [r.columns[name] for r in done]
        if isinstance(values[0], str):  # one text value per series
            out[name] = np.repeat(np.array(values, dtype=object), counts)
        elif isinstance(values[0], pd.Series):
            out[name] = pd.concat(values, ignore_index=True)
        else:
            out[name] = np.concatenate([np.asarray(v) for v in values])
    return pd.DataFrame(out)


def to_series(metrics: pd.DataFrame, metric: str, resample: str) -> pd.DataFrame:
    """One metric's points as a regular ``ds``, ``y`` frame at ``resample`` (mean), gaps interpolated."""
    import pandas as pd

    rows = metrics[metrics["metric"] == metric]
    if rows.empty:
        return pd.DataFrame({"ds": pd.DatetimeIndex([], tz="UTC"), "y": []})
    y = rows.set_index(pd.DatetimeIndex(rows["ts"]))["value"].resample(resample).mean()
    y = y.interpolate(limit_direction="both")
    return pd.DataFrame({"ds": y.index, "y": y.to_numpy(float)})


def series_by_metric(metrics: pd.DataFrame, names: Sequence[str], resample: str) -> dict[str, pd.DataFrame]:
    """:func:`to_series` for several metrics of one service's points: slot means by counting, no resampling per metric."""
    import numpy as np
    import pandas as pd

    step = pd.Timedelta(resample).value
    out = {}
    kinds = metrics["metric"].to_numpy()
    ts = pd.DatetimeIndex(metrics["ts"]).tz_convert("UTC").as_unit("ns").asi8
    values = metrics["value"].to_numpy(float)
    for m in names:
        mask = kinds == m
        if not mask.any():
            out[m] = pd.DataFrame({"ds": pd.DatetimeIndex([], tz="UTC"), "y": []})
            continue
        slot = ts[mask] // step
        first = int(slot.min())
        idx = slot - first
        sums = np.bincount(idx, weights=values[mask])
        counts = np.bincount(idx)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = sums / counts
        missing = counts == 0
        if missing.any():
            y = pd.Series(np.where(missing, np.nan, y)).interpolate(limit_direction="both").to_numpy(float)
        ds = pd.DatetimeIndex(pd.to_datetime((first + np.arange(len(y))) * step, utc=True))
        out[m] = pd.DataFrame({"ds": ds, "y": y})
    return out


def capacity_limit(config: HeadroomConfig, service: Service, metric: str) -> float:
    """The level at which ``metric`` means the service is out of headroom."""
    if metric == LOAD_METRIC:
        return config.load_at_target(service)
    return config.forecasting.utilization_limit_pct


def replicas_needed(load: Any, config: HeadroomConfig, service: Service) -> np.ndarray:
    """``ceil(load / (capacity per replica x target utilization))``, unclipped (``HeadroomConfig.replicas_for``)."""
    import numpy as np

    return np.asarray(config.replicas_for(service, load), dtype=float)


def first_crossing(ds: pd.Series, values: np.ndarray, limit: float) -> pd.Timestamp | None:
    """The first ``ds`` where ``values >= limit``, or ``None``."""
    import numpy as np

    hit = np.flatnonzero(np.asarray(values) >= limit)
    return ds.iloc[hit[0]] if len(hit) else None


def saturation_probability(forecast: Any, limit: float, alpha: float) -> float:
    """Highest probability over the horizon that the load is at or above ``limit``, from the interval read as normal."""
    import numpy as np
    from scipy.special import ndtr

    z = NormalDist().inv_cdf(1 - alpha / 2)
    upper, lower = np.asarray(forecast["yhat_upper"], dtype=float), np.asarray(forecast["yhat_lower"], dtype=float)
    sd = np.maximum((upper - lower) / (2 * z), 1e-9)
    gap = (limit - np.asarray(forecast["yhat"], dtype=float)) / sd
    return float(np.max(ndtr(-gap))) if len(gap) else 0.0


def monthly_cost(replicas: Any, service: Service) -> float:
    """Mean replicas x cost per replica-hour x hours per month."""
    import numpy as np

    return round(float(np.mean(replicas)) * service.cost_per_replica_hour * HOURS_PER_MONTH, 2)


def scenario_factor(scenario: Scenario, ds: pd.Series, run_start: pd.Timestamp) -> np.ndarray:
    """The multiplier ``scenario`` applies to the load at each ``ds``: a step from its start, times a linear growth ramp."""
    import numpy as np
    import pandas as pd

    times = pd.DatetimeIndex(pd.to_datetime(ds, utc=True))
    factor = np.ones(len(times))
    start = scenario.starts_at(run_start)
    if start is not None:
        factor = np.where(times >= start, scenario.multiplier, 1.0)
    by = scenario.growth_by(run_start)
    if by is not None:
        span = max((by - run_start).total_seconds(), 1.0)
        share = np.clip((times - run_start).total_seconds().to_numpy() / span, 0.0, 1.0)
        factor = factor * (1.0 + scenario.growth * share)
    return factor


def load_plan(config: HeadroomConfig, service: Service, forecast: Any, current_replicas: float) -> dict[str, Any]:
    """Saturation, replicas per hour and costs for a load forecast (``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper``).

    ``forecast`` is a frame or a mapping of those columns (``ds`` a Series of times, the rest arrays).
    """
    import numpy as np

    fc_cfg = config.forecasting
    limit = capacity_limit(config, service, LOAD_METRIC)
    ds = forecast["ds"]
    yhat, upper = np.asarray(forecast["yhat"], dtype=float), np.asarray(forecast["yhat_upper"], dtype=float)
    needed = replicas_needed(yhat, config, service)
    planned = np.clip(needed, service.min_replicas, service.max_replicas)
    safe = np.clip(replicas_needed(upper, config, service), service.min_replicas, service.max_replicas)
    step_h = (ds.iloc[1] - ds.iloc[0]).total_seconds() / 3600 if len(ds) > 1 else 1.0
    window = needed[: max(1, int(round(fc_cfg.replicas_days * 24 / step_h)))]
    peak = int(np.max(window)) if len(window) else 0
    return {
        "saturation_at": first_crossing(ds, yhat, limit),
        "saturation_at_upper": first_crossing(ds, upper, limit),
        "saturation_probability": round(saturation_probability(forecast, limit, fc_cfg.alpha), 4),
        "replicas_needed_peak": peak,
        "max_replicas_enough": bool(peak <= service.max_replicas),
        "hours_over_max": round(float(np.sum(window > service.max_replicas) * step_h), 2),
        "cost_now_month": monthly_cost(current_replicas, service),
        "cost_forecast_month": monthly_cost(planned, service),
        "cost_recommended_month": monthly_cost(safe, service),
        "_planned": planned,
    }


def backtest_spec(config: HeadroomConfig, per_day: int) -> BacktestSpec:
    bt = config.forecasting.backtest
    return BacktestSpec(
        initial=int(bt.initial_days * per_day), period=int(bt.period_days * per_day), horizon=int(bt.horizon_days * per_day),
        max_cutoffs=bt.max_cutoffs,
    )


def _current_replicas(metrics: pd.DataFrame, service: Service) -> float:
    import pandas as pd

    rows = metrics[metrics["metric"] == "replicas"]
    if rows.empty:
        return float(service.min_replicas)
    newest = pd.Timestamp(rows["ts"].max())
    return float(rows.loc[rows["ts"] > newest - pd.Timedelta(hours=24), "value"].mean())


def _rounded(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in s.items()} for n, s in scores.items()}


@dataclass(frozen=True)
class _Prepared:
    """One (service, metric) series ready for the engine, or the row that says why it is not."""

    service: Service
    metric: str
    metrics: pd.DataFrame
    series: pd.DataFrame
    base: dict[str, Any]
    skip: dict[str, Any] | None = None


def _prepare(config: HeadroomConfig, service: Service, metrics: pd.DataFrame, metric: str, run_date: str,
             series: pd.DataFrame | None = None) -> _Prepared:
    import pandas as pd

    fc_cfg = config.forecasting
    series = to_series(metrics, metric, fc_cfg.resample) if series is None else series
    per_day = int(round(pd.Timedelta(days=1) / pd.Timedelta(fc_cfg.resample)))
    base = {
        "run_date": run_date, "service": service.name, "tier": service.tier.value, "metric": metric,
        "data_points": len(series), "capacity_limit": capacity_limit(config, service, metric),
        "last_value": float(series["y"].iloc[-1]) if len(series) else float("nan"),
    }
    needed = fc_cfg.min_history_days * per_day
    skip = None
    if len(series) < needed:
        reason = f"{len(series)} {fc_cfg.resample} points of {metric}, {needed} needed ({fc_cfg.min_history_days} days)"
        skip = {**base, "status": "insufficient_history", "reason": reason, "trusted": False, "model": ""}
    return _Prepared(service, metric, metrics, series, base, skip)


def forecast_many(config: HeadroomConfig, work: list[tuple[Service, pd.DataFrame, str]], run_date: str) -> list[CapacityForecast]:
    """Forecast every ``(service, its metrics, metric)`` of a batch with ``auto`` through one engine run per time grid.

    Series on the same grid (same start and length, as a batch read from the store
    usually is) are backtested, combined and forecast together as matrices; a series
    that cannot be forecast gets a row that says why.
    """
    import pandas as pd

    from include.headroom.forecasting.engine import run_engine, spec_for

    fc_cfg = config.forecasting
    step = pd.Timedelta(fc_cfg.resample)
    per_day = int(round(pd.Timedelta(days=1) / step))
    horizon = fc_cfg.horizon_days * per_day
    frames: dict[int, tuple[pd.DataFrame, set[str]]] = {}
    for _, metrics, metric in work:  # one pass per service's frame for all its metrics
        frames.setdefault(id(metrics), (metrics, set()))[1].add(metric)
    series_of = {key: series_by_metric(metrics, sorted(wanted), fc_cfg.resample) for key, (metrics, wanted) in frames.items()}
    prepared = [_prepare(config, svc, metrics, metric, run_date, series_of[id(metrics)][metric]) for svc, metrics, metric in work]
    results: list[CapacityForecast | None] = [CapacityForecast({}, p.skip) if p.skip else None for p in prepared]
    grids: dict[tuple[pd.Timestamp, int], list[int]] = {}
    for i, p in enumerate(prepared):
        if p.skip is None:
            grids.setdefault((pd.Timestamp(p.series["ds"].iloc[0]), len(p.series)), []).append(i)
    for (start, n), members in grids.items():
        import numpy as np

        values = np.vstack([prepared[i].series["y"].to_numpy(float) for i in members])
        try:
            out = run_engine(values, step, horizon, spec_for(fc_cfg, per_day, horizon, n), fc_cfg.alpha, start=start)
        except ForecastError as exc:
            for i in members:
                results[i] = _failed(prepared[i], str(exc))
            continue
        ds = pd.Series(pd.date_range(start + n * step, periods=horizon, freq=step))
        for j, i in enumerate(members):
            results[i] = _capacity_figures(config, prepared[i], ds, (out.yhat[j], out.yhat_lower[j], out.yhat_upper[j]), out.rows[j])
    return [r for r in results if r is not None]


def _failed(p: _Prepared, reason: str) -> CapacityForecast:

    return CapacityForecast({}, {**p.base, "model": "", "trusted": False, "status": "failed", "reason": reason})


def _capacity_figures(config: HeadroomConfig, p: _Prepared, ds: pd.Series, paths: tuple[np.ndarray, np.ndarray, np.ndarray],
                      row: RowResult) -> CapacityForecast:
    """The capacity row (choice, scores, saturation, replicas, costs, trust) and scenario rows from one series' forecast paths."""
    import numpy as np

    fc_cfg = config.forecasting
    service, metric, run_date = p.service, p.metric, p.base["run_date"]
    limit = p.base["capacity_limit"]
    yhat, lower, upper = (np.asarray(a, dtype=float) for a in paths)
    if metric != LOAD_METRIC:
        yhat, lower, upper = np.maximum(yhat, 0.0), np.maximum(lower, 0.0), np.maximum(upper, 0.0)
    forecast = {"ds": ds, "yhat": yhat, "yhat_lower": lower, "yhat_upper": upper}  # the frame is built once, below
    chosen = row.model
    auto = row.chosen_scores
    mape_chosen = auto["mape"]
    capacity: dict[str, Any] = {
        **p.base,
        "model": chosen,
        "scores": json.dumps({"outliers_replaced": row.outliers, "data_points": p.base["data_points"], "candidates": list(row.scores),
                              "members": list(row.members), "weights": list(row.weights), "seasonal_periods": list(row.periods),
                              "level_shifts_at": list(row.breaks), "trend_breaks_at": list(row.trend_breaks), **_rounded(row.scores)}),
        "mape": mape_chosen,
        "mase": auto["mase"],
        "coverage": auto["coverage"],
        "trusted": bool(math.isfinite(mape_chosen) and mape_chosen <= fc_cfg.accuracy_gate_mape),
        "saturation_at": first_crossing(ds, yhat, limit),
        "saturation_at_upper": first_crossing(ds, upper, limit),
        "saturation_probability": round(saturation_probability(forecast, limit, fc_cfg.alpha), 4),
        "status": "ok",
        "reason": "",
    }
    capacity["reason"] = "" if capacity["trusted"] else f"backtest MAPE {mape_chosen:.3f} above the gate {fc_cfg.accuracy_gate_mape}"
    replicas = np.full(len(ds), np.nan)
    scenario_rows: list[dict[str, Any]] = []
    if metric == LOAD_METRIC:
        current = _current_replicas(p.metrics, service)
        plan = load_plan(config, service, forecast, current)
        replicas = plan.pop("_planned")
        capacity.update({k: v for k, v in plan.items() if not k.startswith("saturation")})
        run_start = utc(ds.iloc[0]) - (ds.iloc[1] - ds.iloc[0])
        for scenario in fc_cfg.scenarios:
            if metric not in scenario.metrics:
                continue
            factor = scenario_factor(scenario, ds, run_start)
            shaped = {"ds": ds, "yhat": yhat * factor, "yhat_lower": lower * factor, "yhat_upper": upper * factor}
            splan = load_plan(config, service, shaped, current)
            splan.pop("_planned")
            scenario_rows.append({"run_date": run_date, "service": service.name, "metric": metric, "scenario": scenario.name,
                                  "description": scenario.description, "model": chosen, "trusted": capacity["trusted"], **splan})
    columns = {"run_date": run_date, "service": service.name, "metric": metric, "model": chosen, "ds": ds, "yhat": yhat,
               "yhat_lower": lower, "yhat_upper": upper, "replicas": replicas}
    return CapacityForecast(columns, capacity, scenario_rows)


def forecast_metric(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, metric: str, run_date: str, model: str = "auto",
) -> CapacityForecast:
    """One series: ``auto`` through the engine (as the batch does), or ``model`` alone after its backtests.

    :returns: the forecast frame (with ``replicas`` per step for the load metric), the
        capacity row (choice, every candidate's scores, data length, saturation, replicas,
        costs, trust) and one row per configured scenario.
    :raises ForecastError: when a named model cannot be backtested.
    """
    if model == "auto":
        out = forecast_many(config, [(service, metrics, metric)], run_date)[0]
        if out.capacity.get("status") == "failed":
            raise ForecastError(f"{service.name}/{metric}: {out.capacity['reason']}")
        return out
    return _forecast_named(config, service, metrics, metric, run_date, model)


def _forecast_named(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, metric: str, run_date: str, model: str,
) -> CapacityForecast:
    import pandas as pd

    from include.headroom.forecasting.engine import RowResult

    fc_cfg = config.forecasting
    p = _prepare(config, service, metrics, metric, run_date)
    if p.skip is not None:
        return CapacityForecast({}, p.skip)
    per_day = int(round(pd.Timedelta(days=1) / pd.Timedelta(fc_cfg.resample)))
    season = 7 * per_day if len(p.series) >= 2 * 7 * per_day else per_day
    cleaned, replaced = (replace_outliers(p.series["y"].to_numpy(), season, fc_cfg.outlier_z) if fc_cfg.outlier_z > 0
                         else (p.series["y"].to_numpy(), 0))
    series = p.series.assign(y=cleaned)
    selection = select_model(series, (model,), per_day, backtest_spec(config, per_day), fc_cfg.alpha)
    if model not in selection.scores or "mase" not in selection.scores[model]:
        raise ForecastError(f"{service.name}/{metric}: model {model!r} could not be backtested: {selection.scores.get(model)}")
    forecast = get_model(model, per_day).fit(series).forecast(fc_cfg.horizon_days * per_day, fc_cfg.alpha)
    scores = {**selection.scores, "auto": selection.scores[model]}
    row = RowResult(model=model, members=(model,), weights=(1.0,), periods=(), breaks=(), outliers=replaced, scores=scores)
    paths = tuple(forecast[c].to_numpy(float) for c in ("yhat", "yhat_lower", "yhat_upper"))
    return _capacity_figures(config, p, forecast["ds"].reset_index(drop=True), paths, row)


def forecast_service(config: HeadroomConfig, service: Service, metrics: pd.DataFrame, run_date: str) -> list[CapacityForecast]:
    """Every configured capacity metric of one service (one engine run); a series that cannot be forecast gets a row that says why."""
    return forecast_many(config, [(service, metrics, m) for m in config.forecasting.metrics], run_date)
