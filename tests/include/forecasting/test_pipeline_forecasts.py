"""``run_forecasts`` over a real store: capacity, scenarios and the accuracy history of earlier runs; re-runs are idempotent."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.steps import forecast
from include.headroom.store.queries import latest_capacity

SERVICES = ["search-api", "checkout-api"]


@pytest.fixture
def loaded(store, fleet):
    """21 days of validated metrics for two services up to the fleet's anchor (02:00)."""
    end = fleet.anchor + pd.Timedelta(hours=2)
    rows = fleet.generate(end - pd.Timedelta(days=21), end, services=SERVICES).assign(batch_id="test")
    store.upsert("metrics", forecast._complete(rows, "metrics"))
    return store, end


def test_two_runs_forecast_plan_scenarios_and_score_the_earlier_one(config, loaded):
    store, now = loaded
    earlier = now - pd.Timedelta(days=2)
    first = forecast.run_forecasts(store, config, SERVICES, earlier).to_xcom()
    assert {(r["service"], r["metric"], r["status"]) for r in first} == {
        (s, m, "ok") for s in SERVICES for m in config.forecasting.metrics}
    assert store.count("forecast_accuracy") == 0  # nothing earlier to score yet

    rows = forecast.run_forecasts(store, config, SERVICES, now).to_xcom()
    assert all("scores" not in r for r in rows)
    capacity, forecasts = latest_capacity(store, now)
    assert set(capacity["run_date"]) == {f"{now:%Y-%m-%d}"} and len(capacity) == len(SERVICES) * len(config.forecasting.metrics)
    assert (capacity["mase"] > 0).all() and capacity["coverage"].between(0, 1).all()
    load = forecasts[forecasts["metric"] == "throughput"]
    assert len(load) == len(SERVICES) * config.forecasting.horizon_days * 24 and load["replicas"].notna().all()
    assert forecasts.loc[forecasts["metric"] != "throughput", "replicas"].isna().all()

    scenarios = store.read("scenarios", run_date=f"{now:%Y-%m-%d}")
    assert sorted(scenarios["service"].unique()) == sorted(SERVICES)
    assert set(scenarios["scenario"]) == {s.name for s in config.forecasting.scenarios}
    search = scenarios[scenarios["service"] == "search-api"].set_index("scenario")
    base = capacity[(capacity["service"] == "search-api") & (capacity["metric"] == "throughput")].iloc[0]
    assert search.loc["launch", "saturation_at"] <= base["saturation_at"]
    assert search.loc["launch", "cost_forecast_month"] > base["cost_forecast_month"]

    # The earlier run's forecasts met 48 hours of actuals: scored as days 1 and 2 ahead.
    accuracy = store.read("forecast_accuracy", run_date=f"{earlier:%Y-%m-%d}")
    assert len(accuracy) == len(SERVICES) * len(config.forecasting.metrics) * 2
    assert set(accuracy["horizon_days"]) == {1, 2} and set(accuracy["points"]) == {24}
    throughput = accuracy[accuracy["metric"] == "throughput"]
    assert (throughput["mape"] < 0.1).all() and (throughput["coverage"] > 0.5).all()

    # Re-running the same day replaces its rows instead of adding copies.
    counts = {t: store.count(t) for t in ("capacity", "forecasts", "scenarios", "forecast_accuracy")}
    forecast.run_forecasts(store, config, SERVICES, now)
    assert {t: store.count(t) for t in counts} == counts


def test_stale_services_are_skipped_with_the_reason(config, loaded):
    store, now = loaded
    later = now + pd.Timedelta(days=1)
    rows = forecast.run_forecasts(store, config, SERVICES, later).to_xcom()
    assert {r["status"] for r in rows} == {"skipped"}
    assert all(r["reason"].startswith("stale: newest validated point") for r in rows)
    assert store.count("scenarios") == 0
