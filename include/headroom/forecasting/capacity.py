"""Capacity forecasts: pick the best model by backtest, then time-to-saturation, replicas needed, cost and scenarios."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from include.headroom.config import HOURS_PER_MONTH, HeadroomConfig, Scenario, Service
from include.headroom.exceptions import ForecastError
from include.headroom.forecasting.evaluation import BacktestSpec, select_model
from include.headroom.forecasting.models import get_model
from include.headroom.forecasting.preprocess import replace_outliers
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

LOAD_METRIC = "throughput"


@dataclass(frozen=True)
class CapacityForecast:
    """The forecast frame, the capacity row and the scenario rows for one (service, metric)."""

    forecast: pd.DataFrame
    capacity: dict[str, Any]
    scenarios: list[dict[str, Any]] = field(default_factory=list)


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


def saturation_probability(forecast: pd.DataFrame, limit: float, alpha: float) -> float:
    """Highest probability over the horizon that the load is at or above ``limit``, from the interval read as normal."""
    import numpy as np

    z = NormalDist().inv_cdf(1 - alpha / 2)
    sd = np.maximum((forecast["yhat_upper"] - forecast["yhat_lower"]).to_numpy(float) / (2 * z), 1e-9)
    gap = (limit - forecast["yhat"].to_numpy(float)) / sd
    return float(np.max(1.0 - np.vectorize(NormalDist().cdf)(gap))) if len(gap) else 0.0


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


def load_plan(config: HeadroomConfig, service: Service, forecast: pd.DataFrame, current_replicas: float) -> dict[str, Any]:
    """Saturation, replicas per hour and costs for a load forecast (``ds``, ``yhat``, ``yhat_lower``, ``yhat_upper``)."""
    import numpy as np

    fc_cfg = config.forecasting
    limit = capacity_limit(config, service, LOAD_METRIC)
    needed = replicas_needed(forecast["yhat"], config, service)
    planned = np.clip(needed, service.min_replicas, service.max_replicas)
    safe = np.clip(replicas_needed(forecast["yhat_upper"], config, service), service.min_replicas, service.max_replicas)
    step_h = (forecast["ds"].iloc[1] - forecast["ds"].iloc[0]).total_seconds() / 3600 if len(forecast) > 1 else 1.0
    window = needed[: max(1, int(round(fc_cfg.replicas_days * 24 / step_h)))]
    peak = int(np.max(window)) if len(window) else 0
    return {
        "saturation_at": first_crossing(forecast["ds"], forecast["yhat"].to_numpy(), limit),
        "saturation_at_upper": first_crossing(forecast["ds"], forecast["yhat_upper"].to_numpy(), limit),
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


def forecast_metric(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, metric: str, run_date: str, model: str = "auto",
) -> CapacityForecast:
    """Backtest the configured candidates on one series (``model="auto"``) or use ``model``, then derive the capacity figures.

    :returns: the forecast frame (with ``replicas`` per step for the load metric), the
        capacity row (choice, every candidate's scores, data length, saturation, replicas,
        costs, trust) and one row per configured scenario.
    """
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

    # A weekly slot needs two whole weeks to tell incidents from the season.
    season = 7 * per_day if len(series) >= 2 * 7 * per_day else per_day
    cleaned, replaced = replace_outliers(series["y"].to_numpy(), season)
    series = series.assign(y=cleaned)
    candidates = fc_cfg.models if model == "auto" else (model,)
    selection = select_model(series, candidates, per_day, backtest_spec(config, per_day), fc_cfg.alpha)
    chosen = selection.chosen if model == "auto" else model
    if chosen not in selection.scores or "mase" not in selection.scores[chosen]:
        raise ForecastError(f"{service.name}/{metric}: model {chosen!r} could not be backtested: {selection.scores.get(chosen)}")
    horizon = fc_cfg.horizon_days * per_day
    forecast = get_model(chosen, per_day).fit(series).forecast(horizon, fc_cfg.alpha)
    if metric != LOAD_METRIC:
        forecast[["yhat", "yhat_lower", "yhat_upper"]] = forecast[["yhat", "yhat_lower", "yhat_upper"]].clip(lower=0.0)
    chosen_scores = selection.scores[chosen]
    mape_chosen = chosen_scores["mape"]
    capacity: dict[str, Any] = {
        **base,
        "model": chosen,
        "scores": json.dumps({"outliers_replaced": replaced, "data_points": selection.data_points,
                              "candidates": list(selection.scores), **_rounded(selection.scores)}),
        "mape": mape_chosen,
        "mase": chosen_scores["mase"],
        "coverage": chosen_scores["coverage"],
        "trusted": bool(math.isfinite(mape_chosen) and mape_chosen <= fc_cfg.accuracy_gate_mape),
        "saturation_at": first_crossing(forecast["ds"], forecast["yhat"].to_numpy(), limit),
        "saturation_at_upper": first_crossing(forecast["ds"], forecast["yhat_upper"].to_numpy(), limit),
        "saturation_probability": round(saturation_probability(forecast, limit, fc_cfg.alpha), 4),
        "status": "ok",
        "reason": "",
    }
    capacity["reason"] = "" if capacity["trusted"] else f"backtest MAPE {mape_chosen:.3f} above the gate {fc_cfg.accuracy_gate_mape}"
    forecast["replicas"] = np.nan
    scenario_rows: list[dict[str, Any]] = []
    if metric == LOAD_METRIC:
        current = _current_replicas(metrics, service)
        plan = load_plan(config, service, forecast, current)
        forecast["replicas"] = plan.pop("_planned")
        capacity.update({k: v for k, v in plan.items() if not k.startswith("saturation")})
        run_start = utc(forecast["ds"].iloc[0]) - (forecast["ds"].iloc[1] - forecast["ds"].iloc[0])
        for scenario in fc_cfg.scenarios:
            if metric not in scenario.metrics:
                continue
            factor = scenario_factor(scenario, forecast["ds"], run_start)
            shaped = forecast.assign(**{c: forecast[c] * factor for c in ("yhat", "yhat_lower", "yhat_upper")})
            splan = load_plan(config, service, shaped, current)
            splan.pop("_planned")
            scenario_rows.append({"run_date": run_date, "service": service.name, "metric": metric, "scenario": scenario.name,
                                  "description": scenario.description, "model": chosen, "trusted": capacity["trusted"], **splan})
    forecast.insert(0, "model", chosen)
    forecast.insert(0, "metric", metric)
    forecast.insert(0, "service", service.name)
    forecast.insert(0, "run_date", run_date)
    return CapacityForecast(forecast, capacity, scenario_rows)


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
