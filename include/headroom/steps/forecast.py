"""Forecast step: capacity forecasts per service and metric, and the scoring of earlier runs' forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.steps.common import select_services as _services
from include.headroom.store import queries
from include.headroom.store.queries import by_service, rows_of
from include.headroom.validation.gates import Step, gate_services

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.catalog import Service
    from include.headroom.store import Store


@dataclass(frozen=True)
class ForecastResult:
    """One row per service and capacity metric forecast by a run (``capacity``'s columns, times as ISO text):
    ``status`` ``ok`` with the model and the saturation date, or ``skipped`` with the ``reason``."""

    rows: tuple[Mapping[str, Any], ...]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]


def run_forecasts(store: Store, config: HeadroomConfig, names: Sequence[str], as_of: pd.Timestamp) -> ForecastResult:
    """Forecast capacity metrics of ``names`` from history before ``as_of``; stale services get a row that says why.

    Writes ``forecasts``, ``capacity`` and ``scenarios`` for the run's date, and scores the
    forecasts of earlier runs against the actuals that arrived since (``forecast_accuracy``).
    """
    import pandas as pd

    from include.headroom.forecasting.capacity import forecast_frame, forecast_many

    now = as_of
    run_date = f"{now:%Y-%m-%d}"
    gate = gate_services(store, config, now, Step.FORECAST, names)
    history = queries.slot_means(store, list(names), [*config.forecasting.metrics, "replicas"],  # hourly means, as forecast
                                 now - pd.Timedelta(days=config.forecasting.history_days), now,
                                 int(pd.Timedelta(config.forecasting.resample).total_seconds()))
    forecasts, rows, scenarios = pd.DataFrame(), [], []
    history_of = by_service(history)
    work = []  # the whole batch goes through one engine run per time grid
    for svc in _services(config, names):
        if gate[svc.name]:
            rows += [
                {
                    "run_date": run_date,
                    "service": svc.name,
                    "tier": svc.tier.value,
                    "metric": m,
                    "model": "",
                    "trusted": False,
                    "status": "skipped",
                    "reason": gate[svc.name],
                }
                for m in config.forecasting.metrics
            ]
            continue
        metrics = rows_of(history_of, svc.name, history)
        work += [(svc, metrics, m) for m in config.forecasting.metrics]
    if work:
        results = forecast_many(config, work, run_date)
        for result in results:
            rows.append(result.capacity)
            scenarios += result.scenarios
        forecasts = forecast_frame(results)  # one frame for the batch, not one per series
    if len(forecasts):
        store.upsert("forecasts", forecasts)
    if scenarios:
        store.upsert("scenarios", _complete(pd.DataFrame(scenarios), "scenarios"))
    from include.headroom.forecasting.capacity import LOAD_METRIC

    # The hourly read holds the load's recent days when the load is forecast: the plans read only the older ones.
    since = now - pd.Timedelta(days=config.forecasting.history_days) if LOAD_METRIC in config.forecasting.metrics else None
    _store_capacity_plans(store, config, [svc for svc in _services(config, names) if not gate[svc.name]], now, run_date, history, since)
    capacity = pd.DataFrame(rows)
    store.upsert("capacity", _complete(capacity, "capacity"))
    _score_earlier_forecasts(store, config, [s.name for s in _services(config, names)], history, now, run_date)
    return ForecastResult(tuple({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "scores"}
                                for r in rows))


def _store_capacity_plans(store: Store, config: HeadroomConfig, services: list[Service], now: pd.Timestamp, run_date: str,
                          history: pd.DataFrame, since: pd.Timestamp | None) -> int:
    """The medium and long capacity plans (``forecasting/plans.py``) of ``services`` from their whole days of load before ``now``.

    ``history`` holds the hourly slot means read from ``since`` for the forecasts: see :func:`daily_load`.
    """
    from include.headroom.forecasting.capacity import LOAD_METRIC
    from include.headroom.forecasting.plans import capacity_plans

    if not services:
        return 0
    daily = daily_load(store, [s.name for s in services], LOAD_METRIC, history, since, now)
    plans = capacity_plans(config, services, daily, run_date, metric=LOAD_METRIC, now=now)
    if len(plans):
        store.upsert("capacity_plans", _complete(plans, "capacity_plans"))
    return len(plans)


def daily_load(store: Store, names: Sequence[str], metric: str, history: pd.DataFrame, since: pd.Timestamp | None,
               now: pd.Timestamp) -> pd.DataFrame:
    """``service``, ``ds`` (UTC day), ``y``: the daily mean of ``metric`` of ``names`` for every whole day before ``now``'s.

    The days from ``since`` (rounded up to a day) on are averaged from ``history``'s slot means
    (:func:`~include.headroom.store.queries.slot_means`, weighted by their ``points``: the same mean
    as over the points), so only the older days are read from the store; the points of the
    forecast's window are not read twice. ``since`` ``None`` (``history`` does not hold ``metric``):
    every day from the store.
    """
    import pandas as pd

    cut = now.floor("D") if since is None else min(since.ceil("D"), now.floor("D"))
    older = queries.daily_means(store, metric, cut, names)
    recent = history[(history["metric"] == metric) & history["service"].isin(list(names))] if len(history) else history
    ts = pd.to_datetime(recent["ts"], utc=True) if len(recent) else None
    if ts is not None:
        inside = (ts >= cut) & (ts < now.floor("D"))
        recent, ts = recent[inside], ts[inside]
    if not len(recent):
        return older
    weighted = pd.DataFrame({"service": recent["service"].to_numpy(), "ds": ts.dt.floor("D"),
                             "sum": (recent["value"] * recent["points"]).to_numpy(float), "points": recent["points"].to_numpy(float)})
    days = weighted.groupby(["service", "ds"], as_index=False)[["sum", "points"]].sum()
    days = pd.DataFrame({"service": days["service"], "ds": days["ds"], "y": days["sum"] / days["points"]})
    if len(older):
        older = older.assign(ds=pd.to_datetime(older["ds"], utc=True))
        days = pd.concat([older, days.assign(ds=days["ds"].astype(older["ds"].dtype))], ignore_index=True)
    return days.sort_values(["service", "ds"], kind="stable").reset_index(drop=True)


def _score_earlier_forecasts(
    store: Store, config: HeadroomConfig, names: list[str], history: pd.DataFrame, now: pd.Timestamp, run_date: str
) -> int:
    """Score forecasts made by earlier runs (within the history window) against the actuals in ``history``."""
    import pandas as pd

    from include.headroom.forecasting.accuracy import score_past_forecasts
    from include.headroom.forecasting.capacity import to_series

    if not names:
        return 0
    oldest = f"{now - pd.Timedelta(days=config.forecasting.history_days):%Y-%m-%d}"
    earlier = queries.earlier_forecasts(store, run_date, oldest, now, names)
    if earlier.empty or history.empty:
        return 0
    history_of = by_service(history)
    actuals = [
        to_series(rows_of(history_of, service, history), metric, config.forecasting.resample).assign(service=service, metric=metric)
        for service, metric in earlier[["service", "metric"]].drop_duplicates().itertuples(index=False)
    ]
    scored = score_past_forecasts(earlier, pd.concat(actuals, ignore_index=True), now)
    if len(scored):
        store.upsert("forecast_accuracy", scored)
    return len(scored)


def _complete(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give ``frame`` every column of table ``name``, missing ones empty."""
    from include.headroom.metrics.schema import table

    spec = table(name)
    defaults = {"timestamp": None, "string": "", "float64": float("nan"), "int64": 0, "bool": False}
    out = frame.copy()
    for col, kind in spec.columns.items():
        if col not in out.columns:
            out[col] = defaults[kind]
        elif kind in ("int64", "bool"):
            out[col] = out[col].fillna(defaults[kind])
    return out
