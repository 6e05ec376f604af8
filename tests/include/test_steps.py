"""The pipeline steps over a real store: ingest, validate, gates, forecast, analyse, act, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.headroom.steps import act, analyse, forecast, ingest, report, validate
from include.headroom.exceptions import DataError
from include.headroom.metrics.sources import SampleFleetSource
from include.headroom.report.html import build_report

AS_OF = pd.Timestamp("2026-11-01T02:00Z")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, config):
    from include.headroom.store import ParquetStore

    store = ParquetStore(tmp_path_factory.mktemp("pipeline") / "store")
    source = SampleFleetSource(config, anchor="2026-11-01")
    first = ingest.ingest(store, config, source, AS_OF - pd.Timedelta(minutes=15), AS_OF, history_days=21)
    validated = validate.validate_pending(store, config)
    return store, source, first, validated


def test_first_ingest_loads_history_and_validation_moves_it(config, loaded):
    store, _, first, validated = loaded
    rows = 21 * 288 * len(config.services) * 9
    assert first.rows == rows
    assert first.to_xcom()["read_start"] == first.read_start.isoformat() and first.read_start.tzname() == "UTC"
    assert validated.batch_ids == [first.batch_id]
    (summary,) = validated.to_xcom()
    assert {k: summary[k] for k in ("batch_id", "status", "rows_in", "rows_valid", "rows_quarantined", "failed_services", "message")} == {
        "batch_id": first.batch_id,
        "status": "validated",
        "rows_in": rows,
        "rows_valid": rows,
        "rows_quarantined": 0,
        "failed_services": [],
        "message": "",
    }
    assert summary["data_docs"].endswith(f"data_docs/{first.batch_id}/index.html")
    assert "<html" in Path(summary["data_docs"]).read_text().lower()
    results = store.read("validation_results")
    assert sorted(results["service"]) == sorted(s.name for s in config.services) and results["success"].all()
    assert store.count("metrics") == rows and store.count("staging") == 0


def test_next_interval_reads_only_the_interval_plus_lookback(config, loaded):
    store, source, _, _ = loaded
    before = store.count("metrics")
    nxt = ingest.ingest(store, config, source, AS_OF, AS_OF + pd.Timedelta(minutes=15))
    assert nxt.read_start == AS_OF - pd.Timedelta(minutes=15)  # lookback of 900 s
    assert nxt.to_xcom()["read_start"] == (AS_OF - pd.Timedelta(minutes=15)).isoformat()
    assert nxt.rows == 6 * len(config.services) * 9
    validate.validate_pending(store, config)
    assert store.count("metrics") == before + 3 * len(config.services) * 9  # three new points per series, three replaced


def test_bad_rows_are_quarantined_and_counted(config, loaded, tmp_path):
    from include.headroom.store import ParquetStore

    class Corrupting:
        name = "corrupting"

        def __init__(self, metrics, tiers=("basic", "standard", "professional", "enterprise", "critical")):
            self.metrics, self.tiers = metrics, tiers

        def read(self, start, end):
            rows = SampleFleetSource(config, anchor="2026-11-01").read(start, end)
            rows.loc[rows["metric"].isin(self.metrics) & rows["tier"].isin(self.tiers), "value"] = 250.0
            rows.loc[rows.index[:3], "value"] = -1.0  # three throughput points
            return rows

    store = ParquetStore(tmp_path / "store")
    # one metric in nine bad (11 %) in the lower tiers: under their 20 % threshold, so the batch passes with its
    # bad rows quarantined (enterprise and critical, with 10 % and 5 % thresholds, are left clean)
    lower = ("basic", "standard", "professional")
    ingest.ingest(
        store,
        config,
        Corrupting(["cpu_utilization"], lower),
        AS_OF - pd.Timedelta(hours=2),
        AS_OF - pd.Timedelta(hours=1),
        history_days=1 / 24,
    )
    (summary,) = validate.validate_pending(store, config).to_xcom()
    assert summary["status"] == "validated" and summary["failed_services"] == []
    assert summary["rows_quarantined"] == 12 * sum(s.tier.value in lower for s in config.services) + 3
    assert summary["rows_in"] == summary["rows_valid"] + summary["rows_quarantined"] == store.count("metrics") + store.count("quarantine")
    # three metrics in nine bad: the task fails, naming series and expectation, after keeping every row
    ingest.ingest(
        store,
        config,
        Corrupting(["cpu_utilization", "error_rate", "cache_hit_ratio"]),
        AS_OF - pd.Timedelta(hours=1),
        AS_OF,
        history_days=1 / 24,
    )
    with pytest.raises(DataError, match=r"series catalog-api/error_rate: expect_value_in_unit_range on 12 rows"):
        validate.validate_pending(store, config)
    batches = store.read("batches").set_index("batch_id")
    assert sorted(batches["status"]) == ["failed", "validated"]
    assert batches["rows_in"].sum() == store.count("metrics") + store.count("quarantine")
    quarantined = store.read("quarantine")
    assert set(quarantined.loc[quarantined["metric"] == "throughput", "raw_value"]) == {"-1.0"}
    # Per service: the three bad metrics fail every service of the second batch; each names its batch and share.
    gate = validate.freshness(store, config, AS_OF)
    failed_id = batches.index[batches["status"] == "failed"][0]
    assert all(reason.startswith(f"latest validation failed (batch {failed_id}): ") for reason in gate.values())
    # one service also lost its three throughput points
    assert sum(reason.endswith(": 36 of 108 rows quarantined (33.3%)") for reason in gate.values()) == len(config.services) - 1


def test_freshness_gate(config, loaded):
    store = loaded[0]
    assert set(validate.freshness(store, config, AS_OF).values()) == {None}
    later = validate.freshness(store, config, AS_OF + pd.Timedelta(hours=5))
    assert all(reason and reason.startswith("stale: newest validated point") for reason in later.values())
    decisions = act.plan_all_scaling(store, config, AS_OF + pd.Timedelta(hours=5)).to_xcom()
    assert {d["action"] for d in decisions} == {"skip"}


def test_forecast_analyse_act_report(config, loaded, tmp_path):
    store = loaded[0]
    names = [s.name for s in config.services]
    rows = forecast.run_forecasts(store, config, names, AS_OF).to_xcom()
    assert len(rows) == len(names) * len(config.forecasting.metrics)
    assert {r["status"] for r in rows} == {"ok"}
    analysis = analyse.run_analysis(store, config, names, AS_OF - pd.Timedelta(days=14), AS_OF)
    assert [a.service for a in analysis.services] == names and not any(a.skipped for a in analysis.services)
    analysed = analysis.to_xcom()
    assert {tuple(sorted(r)) for r in analysed} == {("alert", "budget_remaining", "findings", "reason", "service", "status")}
    by_service = {r["service"]: r for r in analysed}
    # the shared database's slowdown, then the cache loss; the first is blamed on the database, told to its caller's team
    assert [f["type"] for f in by_service["catalog-api"]["findings"]] == ["database_bound", "cache_bound"]
    assert [(f["root_cause_service"], f["remedy_owner"]) for f in by_service["catalog-api"]["findings"]] == [
        ("postgres-main", "commerce"),
        ("catalog-api", "commerce"),
    ]
    assert [(f["type"], f["root_cause_service"], f["remedy_owner"]) for f in by_service["checkout-api"]["findings"]] == [
        ("cpu_bound", "checkout-api", "commerce"),
        ("dependency_failure", "payments-gateway", "payments"),
    ]
    assert [(f["type"], f["kind"]) for f in by_service["search-api"]["findings"]] == [("cpu_bound", "predicted")]
    warming = act.plan_all_warming(store, config, AS_OF)
    assert [p["service"] for p in warming.triggered] == [p["service"] for p in warming.to_xcom() if p["trigger"]]
    plans = {p["service"]: p for p in warming.to_xcom()}
    assert plans["catalog-api"]["trigger"] == "cache_bound" and plans["catalog-api"]["keys"] > 0
    assert plans["orders-api"]["trigger"] is None
    decisions = act.plan_all_scaling(store, config, AS_OF).to_xcom()
    assert len(decisions) == len(names) and all(d["service"] in names for d in decisions)
    lines = {s.service: s for s in report.summary(store, config, AS_OF).services}
    assert list(lines) == names and lines["checkout-api"].bottleneck.startswith("cpu_bound (observed")
    assert lines["search-api"].saturation != "none in horizon" and lines["search-api"].model
    paths = build_report(store, config, AS_OF, tmp_path / "reports")
    html = paths["html"].read_text()
    assert html.count("<img class='forecast'") == len(names)
    # each observed finding shown in full carries its incident's dependency graph, the root cause named beside it
    graphs = html.count("<img class='incident-graph'")
    assert graphs >= 2 and graphs == html.count("<p class='root-cause'>Root cause")
    assert "Root cause <b>postgres-main</b>" in html and "Root cause <b>payments-gateway</b>" in html
    twin = json.loads(paths["json"].read_text())
    search = next(o for o in twin["overview"] if o["service"] == "search-api")
    assert search["saturation_at"] is not None and search["findings"] == 1
    assert twin["overview"][0]["service"] == "search-api"  # most urgent saturation first


def test_plans_read_only_the_days_before_the_forecasts_hourly_window(config, loaded):
    """The daily load for the plans: days inside the hourly read come from its slot means, the same means as over the points."""
    from include.headroom.store import queries

    store = loaded[0]
    names = [s.name for s in config.services][:4]
    since = AS_OF - pd.Timedelta(days=10)  # not a midnight: that day is read from the store
    history = queries.slot_means(store, names, ["throughput", "cpu_utilization"], since, AS_OF, 3600)
    got = forecast.daily_load(store, names, "throughput", history, since, AS_OF)
    want = queries.daily_means(store, "throughput", AS_OF.floor("D"), names)
    assert len(want) == 4 * 21 and got[["service", "ds"]].equals(want[["service", "ds"]])
    assert np.allclose(got["y"], want["y"], rtol=1e-12)
    # Without the load in the hourly read, every day comes from the store.
    assert forecast.daily_load(store, names, "throughput", history.head(0), None, AS_OF)["y"].tolist() == want["y"].tolist()
    # A service without load points in the window has no days there (none are made up).
    assert set(forecast.daily_load(store, names, "throughput", history.head(0), since, AS_OF)["ds"]) == set(
        want.loc[want["ds"] < since.ceil("D"), "ds"])
