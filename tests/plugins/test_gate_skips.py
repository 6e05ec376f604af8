"""The Airflow-layer gate: a task with no service it may act on is skipped, naming each service and why; otherwise it runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from headroom_provider.gates import skip_unless_fresh
from include.headroom.validation.results import validate_rows

START, END, NOW = pd.Timestamp("2026-10-31T23:00Z"), pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T00:05Z")


@pytest.fixture
def store_with_an_hour(monkeypatch, tmp_path, config, fleet):
    from headroom_provider.hooks.store import HeadroomStoreHook

    monkeypatch.setenv("AIRFLOW_CONN_HEADROOM_STORE", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path / "store")}}))
    store = HeadroomStoreHook().get_store()
    rows = fleet.generate(START, END).reset_index(drop=True)
    rows.loc[(rows["service"] == "orders-api") & rows["metric"].isin(["cpu_utilization", "error_rate", "cache_hit_ratio"]), "value"] = 250.0
    validate_rows(store, config, rows, "hour", "test", START, END, now=NOW, reports_dir=tmp_path / "reports")
    return store


def test_a_task_with_some_fresh_services_runs(store_with_an_hour):
    reasons = skip_unless_fresh("forecast", END, ["orders-api", "search-api"])
    assert reasons["search-api"] is None and reasons["orders-api"].startswith("latest validation failed (batch hour)")


def test_a_task_with_nothing_fresh_is_skipped_with_every_reason(store_with_an_hour):
    with pytest.raises(AirflowSkipException, match=r"forecast: no service may be acted on at .*orders-api: latest validation failed"):
        skip_unless_fresh("forecast", END, ["orders-api"])
    later = END + pd.Timedelta(hours=3)
    with pytest.raises(AirflowSkipException, match=r"scaling: no service may be acted on .*search-api: stale: newest validated point"):
        skip_unless_fresh("scaling", later)
    audit = store_with_an_hour.read("audit", kind="gate")
    assert set(audit["action"]) == {"forecast", "scaling"} and len(audit[audit["action"] == "scaling"]) == 12


def test_the_freshness_sensor_counts_valid_fresh_services_and_skips_on_timeout(store_with_an_hour):
    from headroom_provider.sensors.freshness import MetricsFreshnessSensor

    sensor = MetricsFreshnessSensor(task_id="wait_for_fresh_metrics", min_fresh_share=0.9)
    assert sensor.soft_fail is True
    at_end = END
    assert sensor.poke({"data_interval_start": at_end, "data_interval_end": at_end}) is True  # 11 of 12 valid and fresh
    later = END + pd.Timedelta(hours=3)
    assert sensor.poke({"data_interval_start": later, "data_interval_end": later}) is False
    strict = MetricsFreshnessSensor(task_id="strict", min_fresh_share=1.0)
    assert strict.poke({"data_interval_start": at_end, "data_interval_end": at_end}) is False  # orders-api failed validation
