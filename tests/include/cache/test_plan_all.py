"""plan_all_warming on a real store: a forecast traffic surge within the lead time triggers warming ahead of it, a
scheduled run warms every fresh service, and the keys come from the access log ranked for the coming peak."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.steps import act, ingest, validate
from include.headroom.cache.settings import load_cache_settings
from include.headroom.metrics.schema import table
from include.headroom.metrics.sources import SampleFleetSource
from include.headroom.store import ParquetStore
from tests.conftest import ANCHOR

SURGE = "checkout-api"


@pytest.fixture(scope="module")
def staged(config, fleet, tmp_path_factory):
    """An hour of validated metrics up to 20 minutes before the checkout-api surge, and a forecast that sees the surge coming."""
    surge = next(i for i in config.sample_fleet.incidents if i.kind == "traffic_surge" and i.service == SURGE)
    as_of = (fleet.anchor + pd.Timedelta(days=surge.start_day)).floor("5min") - pd.Timedelta(minutes=20)
    store = ParquetStore(tmp_path_factory.mktemp("plan_all") / "store")
    ingest.ingest(store, config, SampleFleetSource(config, anchor=ANCHOR), as_of - pd.Timedelta(hours=1), as_of, history_days=1 / 24)
    validate.validate_pending(store, config, now=as_of)
    run_date = f"{as_of:%Y-%m-%d}"
    hours = pd.date_range(as_of.floor("h"), periods=6, freq="h")
    forecasts, capacity = [], []
    for svc in config.services:
        expected = fleet.expected_load(svc, hours)  # a forecast that knows the load model, surge included
        forecasts.append(pd.DataFrame({"run_date": run_date, "service": svc.name, "metric": "throughput", "model": "truth",
                                       "ds": hours, "yhat": expected, "yhat_lower": expected, "yhat_upper": expected, "replicas": 1.0}))
        blank = {c: (0 if kind == "int64" else False if kind == "bool" else None) for c, kind in table("capacity").columns.items()}
        capacity.append({**blank, "run_date": run_date, "service": svc.name,
                         "tier": svc.tier.value, "metric": "throughput", "model": "truth"})
    store.upsert("forecasts", pd.concat(forecasts, ignore_index=True))
    store.upsert("capacity", pd.DataFrame(capacity))
    return store, as_of


def test_forecast_surge_triggers_warming_ahead_of_it(config, staged, monkeypatch):
    monkeypatch.setenv("HEADROOM_SAMPLE_ANCHOR", ANCHOR)
    store, as_of = staged
    plans = {p["service"]: p for p in act.plan_all_warming(store, config, as_of).to_xcom()}
    triggered = {s for s, p in plans.items() if p["trigger"]}
    assert triggered == {SURGE}
    plan = plans[SURGE]
    assert plan["triggers"] == ["forecast_peak"] and plan["keys"] == load_cache_settings().warming.max_keys
    recent = store.read_metrics(services=[SURGE], metrics=["throughput"], start=as_of - pd.Timedelta(hours=1), end=as_of)["value"].mean()
    assert plan["peak_rps"] >= 1.2 * recent
    assert plan["top_keys"][0] == f"{SURGE}:item:1" and sum(plan["ttl_histogram"].values()) == plan["keys"]
    assert plans["orders-api"]["skip_reason"] == "no cache_bound finding, no cache loss and no forecast peak ahead"


def test_scheduled_run_warms_every_fresh_service(config, staged, monkeypatch):
    monkeypatch.setenv("HEADROOM_SAMPLE_ANCHOR", ANCHOR)
    store, as_of = staged
    plans = act.plan_all_warming(store, config, as_of, trigger="schedule", services=[SURGE, "orders-api"]).to_xcom()
    assert [(p["service"], p["triggers"]) for p in plans] == [(SURGE, ["forecast_peak", "schedule"]), ("orders-api", ["schedule"])]
    assert all(p["keys"] > 0 and p["bytes"] <= load_cache_settings().warming.budget_bytes for p in plans)
    later = act.plan_all_warming(store, config, as_of + pd.Timedelta(hours=3), trigger="schedule", services=["orders-api"]).to_xcom()
    assert later[0]["trigger"] is None and later[0]["skip_reason"].startswith("stale")
