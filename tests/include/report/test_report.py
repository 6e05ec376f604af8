"""The report's figures checked against the store, the HTML page read back against its JSON twin, and the settings."""

from __future__ import annotations

import base64
import json
import shutil
import struct
from html.parser import HTMLParser

import pandas as pd
import pytest

from include.headroom.audit import AuditRecord, Status, record
from include.headroom.exceptions import ConfigError
from include.headroom.store import ParquetStore
from include.headroom.report.figures import spec_horizon_bands
from include.headroom.report.figures import collect_figures
from include.headroom.report.html import build_report, fmt, write_fleet_report, write_service_pages
from include.headroom.report.settings import ReportSettings, load_report_settings
from tests.include.report.results import AS_OF, fleet_results_dir

SETTINGS = ReportSettings()


class PageReader(HTMLParser):
    """The overview table's cells (``data-field`` / ``data-value`` and shown text) and every image of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, tuple]] = []
        self.images: list[dict[str, str]] = []
        self._table, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr" and self._table == "overview":
            self.rows.append({})
        elif tag == "td" and self._table == "overview" and "data-field" in attrs:
            self._cell = [attrs["data-field"], attrs["data-value"], ""]
        elif tag == "img":
            self.images.append(attrs)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            field, raw, text = self._cell
            self.rows[-1][field] = (json.loads(raw), text)
            self._cell = None
        elif tag == "table":
            self._table = None


def _read_page(text: str) -> PageReader:
    reader = PageReader()
    reader.feed(text)
    reader.rows = [r for r in reader.rows if r]
    return reader


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A private copy of the fleet's results (tests here add audit records)."""
    root = tmp_path_factory.mktemp("report") / "data"
    shutil.copytree(fleet_results_dir(), root)
    return ParquetStore(root / "store")


@pytest.fixture(scope="module")
def report(results, config, tmp_path_factory):
    record(results, AuditRecord(kind="connector", service="salesforce:Account", action="sync", status=Status.FAILED, dry_run=False,
                                executor="SyncConnectorOperator", reason="HTTP 429 after 5 attempts", before={"watermark": "2026-10-31"},
                                after="unchanged"), now=AS_OF)
    paths = build_report(results, config, AS_OF, tmp_path_factory.mktemp("reports"), SETTINGS)
    return paths, json.loads(paths["json"].read_text())


def test_overview_figures_equal_the_store(results, config, report):
    _, twin = report
    run = results.query("SELECT max(run_date) AS d FROM capacity WHERE run_date <= ?", [f"{AS_OF:%Y-%m-%d}"])["d"].iloc[0]
    capacity = results.query("SELECT * FROM capacity WHERE run_date = ? AND metric = 'throughput'", [run]).set_index("service")
    slo = results.query("SELECT * FROM slo_status WHERE window_end = (SELECT max(window_end) FROM slo_status)").set_index("service")
    assert twin["run_date"] == run
    assert len(twin["overview"]) == len(config.services)
    for row in twin["overview"]:
        cap = capacity.loc[row["service"]]
        expected = None if pd.isna(cap["saturation_at"]) else pd.Timestamp(cap["saturation_at"]).isoformat()
        assert row["saturation_at"] == expected, row["service"]
        assert row["cost_forecast_month"] == pytest.approx(cap["cost_forecast_month"])
        assert row["trusted"] == bool(cap["trusted"]) and row["model"] == cap["model"]
        assert row["error_budget_remaining"] == pytest.approx(slo.loc[row["service"], "error_budget_remaining"])
        assert row["slo_status"] == slo.loc[row["service"], "status"]
    assert twin["fleet"]["cost"]["now_month"] == pytest.approx(capacity["cost_now_month"].sum(), abs=0.01)
    saturating = [r["saturation_at"] for r in twin["overview"] if r["saturation_at"]]
    assert saturating == sorted(saturating) and twin["overview"][0]["saturation_at"] == saturating[0]
    assert all(r["saturation_at"] is None for r in twin["overview"][len(saturating):])  # dated ones first


def test_service_figures_equal_the_store(results, config, report):
    _, twin = report
    audit = results.read("audit")
    findings = results.query("SELECT * FROM findings WHERE window_end = (SELECT max(window_end) FROM findings)")
    for svc in config.services:
        fig = twin["services"][svc.name]
        mine = audit[audit["service"] == svc.name].sort_values(["created_at", "audit_id"], ascending=False)
        assert [a["audit_id"] for a in fig["actions"]] == list(mine["audit_id"].head(SETTINGS.actions_per_service))
        assert len(fig["findings"]) == (findings["service"] == svc.name).sum()
        scaling = [a for a in fig["actions"] if a["kind"] == "scaling"]
        assert all(isinstance(a["before"], dict) and "replicas" in a["after"] for a in scaling)
    search = twin["services"]["search-api"]
    assert [(f["type"], f["kind"], f["remedy"]) for f in search["findings"]] == [("cpu_bound", "predicted", "scale_out")]
    assert search["replicas"]["planned_peak"] == int(results.query(
        "SELECT replicas_needed_peak AS r FROM capacity WHERE service = 'search-api' AND metric = 'throughput' AND run_date = ?",
        [twin["run_date"]])["r"].iloc[0])
    assert twin["other_actions"][0]["service"] == "salesforce:Account" and twin["other_actions"][0]["after"] == "unchanged"


def test_accuracy_over_time_and_scenarios_equal_the_store(results, report):
    _, twin = report
    acc = results.read("forecast_accuracy")
    assert len(acc), "the fixture's earlier forecast run was scored"
    expected = acc.groupby(["run_date", "metric", "model", "horizon_days"])["mape"].median()
    shown = {(r["run_date"], r["metric"], r["model"], r["horizon_days"]): r for r in twin["accuracy"]["over_time"]}
    assert set(shown) == set(expected.index)
    for key, mape in expected.items():
        assert shown[key]["accuracy"] == pytest.approx(1 - mape)
    scenarios = results.read("scenarios", run_date=twin["run_date"])
    assert len(twin["scenarios"]) == len(scenarios) > 0
    launch = scenarios[(scenarios["service"] == "search-api") & (scenarios["scenario"] == "launch")].iloc[0]
    row = next(r for r in twin["scenarios"] if r["service"] == "search-api" and r["scenario"] == "launch")
    assert row["replicas_needed_peak"] == launch["replicas_needed_peak"]


def test_html_shows_exactly_the_twins_figures(config, report):
    paths, twin = report
    page = paths["html"].read_text()
    assert paths["latest_html"].read_text() == page and json.loads(paths["latest_json"].read_text()) == twin
    reader = _read_page(page)
    shown = [{k: v for k, (v, _) in row.items()} for row in reader.rows]
    assert shown == [{k: o[k] for k in row} for row, o in zip(shown, twin["overview"], strict=False)]
    assert [r["service"] for r in shown] == [o["service"] for o in twin["overview"]]
    for row, o in zip(reader.rows, twin["overview"], strict=False):
        assert row["saturation_at"][1] == fmt(o["saturation_at"], "time")  # the date a reader sees
    forecasts = [img for img in reader.images if "forecast" in img.get("alt", "")]
    assert len(forecasts) == len(config.services)
    for img in forecasts:
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 500 and height > 400
    for h in twin["accuracy"]["horizons"]:
        assert h["horizon"] in page


def test_drill_down_page_per_service(config, report):
    paths, twin = report
    for svc in config.services:
        page = (paths["services"] / f"{svc.name}.html").read_text()
        reader = _read_page(page)
        assert [r["service"][0] for r in reader.rows] == [svc.name]
        row = next(o for o in twin["overview"] if o["service"] == svc.name)
        assert {k: v for k, (v, _) in reader.rows[0].items()} == row
        assert sum("forecast" in img.get("alt", "") for img in reader.images) == 1


def test_pages_drawn_in_batches_and_a_fleet_page_with_the_most_urgent_in_full(results, config, report, tmp_path):
    """What the DAG does across workers: service pages per batch, then the fleet page with only the most urgent sections."""
    from dataclasses import replace

    _, whole = report
    settings = replace(SETTINGS, detailed_services=3)
    figures = collect_figures(results, config, AS_OF, settings)
    order = [o["service"] for o in figures["overview"]]
    plots = {}
    for batch in (order[:5], order[5:]):
        drawn = write_service_pages(results, config, figures, tmp_path, settings, batch)
        assert list(drawn) == batch
        plots.update(drawn)
    assert sorted(p.stem for p in (tmp_path / "services").glob("*.html")) == sorted(s.name for s in config.services)
    with pytest.raises(ValueError, match=r"\['" + order[0] + r"'\] in full but their plots were not drawn"):
        write_fleet_report(figures, {n: plots[n] for n in order[1:]}, tmp_path, settings)
    with pytest.raises(ValueError, match="no figures for services \\['no-such-service'\\]"):
        write_service_pages(results, config, figures, tmp_path, settings, ["no-such-service"])
    paths = write_fleet_report(figures, plots, tmp_path, settings)
    page = paths["html"].read_text()
    reader = _read_page(page)
    assert [r["service"][0] for r in reader.rows] == order  # every service keeps its overview row
    shown = [img["alt"] for img in reader.images if "forecast" in img.get("alt", "")]
    assert len(shown) == 3 and all(name in alt for name, alt in zip(order[:3], shown, strict=False))
    assert f"the other {len(order) - 3} have their own page" in page
    assert json.loads(paths["json"].read_text())["overview"] == whole["overview"]


def test_spec_horizon_bands_agree_with_the_accuracy_module(config, fleet, tmp_path):
    from include.headroom.forecasting.accuracy import fleet_horizon_bands

    daily = fleet.daily_history(200, services=["search-api", "orders-api", "docs-site"])
    store = ParquetStore(tmp_path / "store")
    store.upsert("metrics", pd.DataFrame({
        "ts": pd.to_datetime(daily["ds"], utc=True), "service": daily["service"],
        "tier": daily["service"].map({s.name: s.tier.value for s in config.services}), "metric": "throughput",
        "value": daily["y"], "unit": "req/s", "source": "test", "labels": "", "batch_id": "daily",
    }))
    bands = {b["horizon"]: b for b in spec_horizon_bands(store, config, fleet.anchor, "throughput")}
    assert bands["long"]["status"] == "insufficient_history" and bands["long"]["needed_days"] == 730
    assert bands["long"]["accuracy"] is None
    both = {k: v for k, v in config.forecasting.horizons.items() if k in ("short", "medium")}
    expected = fleet_horizon_bands(daily[["ds", "service", "y"]], both)
    for name in ("short", "medium"):
        assert bands[name]["accuracy"] == pytest.approx(expected[name]["median_accuracy"], abs=1e-4)
        assert bands[name]["meets_band"] == expected[name]["meets_band"]
        assert bands[name]["status"] == ("meets" if expected[name]["meets_band"] else "misses")


def test_settings_are_validated_naming_file_and_field(tmp_path, monkeypatch):
    assert load_report_settings().plot_metric == "throughput"
    (tmp_path / "report.yaml").write_text("history_days: 0\n")
    with pytest.raises(ConfigError, match=r"report.yaml: history_days=0 must be"):
        load_report_settings(tmp_path)
    (tmp_path / "report.yaml").write_text("histroy_days: 3\n")
    with pytest.raises(ConfigError, match=r"unknown fields \['histroy_days'\]"):
        load_report_settings(tmp_path)
    (tmp_path / "report.yaml").write_text("s3_url: bucket/prefix\n")
    with pytest.raises(ConfigError, match=r"s3_url='bucket/prefix' must start with s3://"):
        load_report_settings(tmp_path)
    monkeypatch.setenv("HEADROOM_REPORT_S3_URL", "s3://reports/daily/")
    assert load_report_settings(tmp_path).s3_target == ("reports", "daily")


def test_last_weeks_policy_replay_per_service(config, report):
    """Actual replicas vs reactive HPA vs the predictive policy over the last 7 days, per service, in the twin and the page."""
    paths, twin = report
    rows = twin["policy_replay"]
    replayed = {r["service"] for r in rows if r["policy"] is not None}
    assert replayed, rows[:3]
    for name in replayed:
        svc = config.service(name)
        mine = {r["policy"]: r for r in rows if r["service"] == name}
        assert set(mine) == {"actual", "reactive", "predictive"}
        for r in mine.values():
            assert r["replica_hours"] <= svc.max_replicas * 7 * 24 + 0.01
            assert r["cost_usd"] == pytest.approx(r["replica_hours"] * svc.cost_per_replica_hour, abs=0.02)
            assert r["slo_violation_minutes"] >= 0
    page = paths["html"].read_text()
    assert "id='policy-replay'" in page and "Last week&#x27;s policy replay" in page or "Last week's policy replay" in page


def test_medium_and_long_capacity_plans_per_service_equal_the_store(results, config, report):
    paths, twin = report
    plans = results.read("capacity_plans", run_date=twin["run_date"])
    assert set(plans["service"]) == {s.name for s in config.services} and set(plans["horizon"]) == {"medium", "long"}
    mine = plans[(plans["service"] == "search-api")]
    shown = {(p["horizon"], p["scenario"]): p for p in twin["services"]["search-api"]["plans"]}
    assert set(shown) == set(zip(mine["horizon"], mine["scenario"], strict=True))
    for (horizon, scenario), rows in mine.groupby(["horizon", "scenario"]):
        p, rows = shown[(horizon, scenario)], rows.sort_values("ds")
        if rows["yhat"].notna().any():
            assert p["yhat_end"] == pytest.approx(rows["yhat"].iloc[-1]) and p["until"] == rows["ds"].iloc[-1].isoformat()
            assert p["replicas_peak"] == pytest.approx(rows["replicas"].max())
        assert p["status"] == rows["status"].iloc[0] and p["band"] == [rows["band_low"].iloc[0], rows["band_high"].iloc[0]]
    assert shown[("medium", "baseline")]["yhat_end"] is not None  # the fleet's history is long enough for a 12-month plan
    page = (paths["services"] / "search-api.html").read_text()
    assert "<h3>Capacity plans</h3>" in page and f"{shown[('medium', 'baseline')]['yhat_end']:,.4g}" in page
