"""Capacity forecasts: pick the best model by backtest, then time-to-saturation, replicas needed and cost."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from include.headroom.config import HOURS_PER_MONTH, HeadroomConfig, Service
from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import holdout_scores
from include.headroom.forecasting.models import get_model
from include.headroom.forecasting.preprocess import replace_outliers

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class CapacityForecast:
    """The forecast frame and the capacity row for one (service, metric)."""

    forecast: pd.DataFrame
    capacity: dict[str, Any]


def to_series(metrics: pd.DataFrame, metric: str, resample: str) -> pd.DataFrame:
    """One metric's points as a regular ``ds``, ``y`` frame at ``resample`` (mean), gaps interpolated."""
    import pandas as pd

    rows = metrics[metrics["metric"] == metric]
    if rows.empty:
        return pd.DataFrame({"ds": pd.DatetimeIndex([], tz="UTC"), "y": []})
    y = rows.set_index(pd.DatetimeIndex(rows["ts"]))["value"].resample(resample).mean()
    y = y.interpolate(limit_direction="both")
    return pd.DataFrame({"ds": y.index, "y": y.to_numpy(float)})


def capacity_limit(config: HeadroomConfig, service: Service, metric: str) -> float:
    """The level at which ``metric`` means the service is out of headroom."""
    if metric == "throughput":
        return service.max_capacity_rps * config.hpa_profile(service).cpu_target / 100.0
    return config.forecasting.utilization_limit_pct


def _replicas_for(load: Any, config: HeadroomConfig, service: Service) -> Any:
    import numpy as np

    per_replica = service.capacity_per_replica_rps * config.hpa_profile(service).cpu_target / 100.0
    return np.ceil(np.asarray(load, dtype=float) / per_replica)


def forecast_metric(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, metric: str, run_date: str
) -> CapacityForecast:
    """Backtest every configured model on one series, keep the best, and derive the capacity figures."""
    import numpy as np
    import pandas as pd

    fc_cfg = config.forecasting
    series = to_series(metrics, metric, fc_cfg.resample)
    step_h = pd.Timedelta(fc_cfg.resample) / pd.Timedelta(hours=1)
    per_day = int(round(24 / step_h))
    limit = capacity_limit(config, service, metric)
    base = {
        "run_date": run_date, "service": service.name, "tier": service.tier.value, "metric": metric,
        "data_points": len(series), "capacity_limit": limit,
        "last_value": float(series["y"].iloc[-1]) if len(series) else float("nan"),
    }
    needed = fc_cfg.min_history_days * per_day
    if len(series) < needed:
        reason = f"{len(series)} {fc_cfg.resample} points of {metric}, {needed} needed ({fc_cfg.min_history_days} days)"
        return CapacityForecast(pd.DataFrame(), {**base, "status": "insufficient_history", "reason": reason, "trusted": False, "model": ""})

    holdout = fc_cfg.backtest_holdout_days * per_day
    # A weekly season needs two whole weeks left for training after the holdout.
    season = 7 * per_day if len(series) - holdout >= 2 * 7 * per_day else per_day
    cleaned, replaced = replace_outliers(series["y"].to_numpy(), season)
    series = series.assign(y=cleaned)
    scores: dict[str, dict[str, float]] = {}
    for name in fc_cfg.models:
        try:
            scores[name] = holdout_scores(get_model(name, season), series, holdout)
        except ForecastError as exc:
            scores[name] = {"error": str(exc)}  # type: ignore[dict-item]
    usable = {n: s for n, s in scores.items() if "mae" in s and math.isfinite(s["mae"])}
    if not usable:
        raise ForecastError(f"{service.name}/{metric}: no model could be backtested: {scores}")
    # The baseline is a candidate, so the choice is never worse than seasonal naive.
    chosen = min(usable, key=lambda n: usable[n]["mae"])
    horizon = fc_cfg.horizon_days * per_day
    forecast = get_model(chosen, season).fit(series).forecast(horizon, fc_cfg.alpha)
    if metric != "throughput":
        forecast[["yhat", "yhat_lower", "yhat_upper"]] = forecast[["yhat", "yhat_lower", "yhat_upper"]].clip(lower=0.0)

    def first_crossing(column: str) -> pd.Timestamp | None:
        hit = np.flatnonzero(forecast[column].to_numpy() >= limit)
        return forecast["ds"].iloc[hit[0]] if len(hit) else None

    z = NormalDist().inv_cdf(1 - fc_cfg.alpha / 2)
    sd = np.maximum((forecast["yhat_upper"] - forecast["yhat_lower"]).to_numpy() / (2 * z), 1e-9)
    probability = float(np.max(1.0 - np.vectorize(NormalDist().cdf)((limit - forecast["yhat"].to_numpy()) / sd)))
    mape_chosen = usable[chosen]["mape"]
    capacity: dict[str, Any] = {
        **base,
        "model": chosen,
        "scores": json.dumps({
            "outliers_replaced": replaced,
            **{n: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in s.items()} for n, s in scores.items()},
        }),
        "mape": mape_chosen,
        "trusted": bool(mape_chosen <= fc_cfg.accuracy_gate_mape),
        "saturation_at": first_crossing("yhat"),
        "saturation_at_upper": first_crossing("yhat_upper"),
        "saturation_probability": round(probability, 4),
        "status": "ok",
        "reason": "",
    }
    if metric == "throughput":
        week = forecast["yhat"].iloc[: 7 * per_day]
        peak = int(_replicas_for(week.max(), config, service))
        capacity["replicas_needed_peak"] = peak
        capacity["max_replicas_enough"] = peak <= service.max_replicas
        recent = metrics[(metrics["metric"] == "replicas")]
        current = float(recent["value"].tail(7 * 24 * 12).mean()) if len(recent) else float(service.min_replicas)
        planned = np.clip(_replicas_for(forecast["yhat"], config, service), service.min_replicas, service.max_replicas)
        capacity["cost_now_month"] = round(current * service.cost_per_replica_hour * HOURS_PER_MONTH, 2)
        capacity["cost_forecast_month"] = round(float(planned.mean()) * service.cost_per_replica_hour * HOURS_PER_MONTH, 2)
    forecast.insert(0, "model", chosen)
    forecast.insert(0, "metric", metric)
    forecast.insert(0, "service", service.name)
    forecast.insert(0, "run_date", run_date)
    return CapacityForecast(forecast, capacity)


def forecast_service(config: HeadroomConfig, service: Service, metrics: pd.DataFrame, run_date: str) -> list[CapacityForecast]:
    """Every configured capacity metric of one service; a series that cannot be forecast gets a row that says why."""
    results = []
    for metric in config.forecasting.metrics:
        try:
            results.append(forecast_metric(config, service, metrics, metric, run_date))
        except ForecastError as exc:
            import pandas as pd

            results.append(CapacityForecast(pd.DataFrame(), {
                "run_date": run_date, "service": service.name, "tier": service.tier.value, "metric": metric,
                "model": "", "trusted": False, "status": "failed", "reason": str(exc),
            }))
    return results
