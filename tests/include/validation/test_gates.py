"""Gates: per service, a failed latest validation or stale data refuses every decision, with the reason audited."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from validation_catalogue import END, NOW, START

from include.headroom.steps import act
from include.headroom.validation.gates import Step, gate_services, service_freshness
from include.headroom.validation.results import validate_rows

NEXT_END, NEXT_NOW = pd.Timestamp("2026-11-01T01:00Z"), pd.Timestamp("2026-11-01T01:05Z")
BROKEN = "orders-api"


def _break(rows: pd.DataFrame, service: str, metrics=("cpu_utilization", "error_rate", "cache_hit_ratio")) -> pd.DataFrame:
    out = rows.copy()
    out.loc[(out["service"] == service) & out["metric"].isin(metrics), "value"] = 250.0
    return out


@pytest.fixture(scope="module")
def gated_once(config, hour, tmp_path_factory):
    """A store whose one batch failed for orders-api only (3 of its 9 metrics out of range: 33 % > 20 %)."""
    from include.headroom.store import ParquetStore

    root = tmp_path_factory.mktemp("gated")
    summary = validate_rows(ParquetStore(root / "store"), config, _break(hour, BROKEN), "hour-1", "test", START, END, now=NOW,
                            reports_dir=root)
    assert (summary["status"], summary["failed_services"]) == ("failed", [BROKEN])
    return root / "store"


@pytest.fixture
def gated(gated_once, tmp_path):
    """A private copy of that store, for tests that add to it."""
    from include.headroom.store import ParquetStore

    shutil.copytree(gated_once, tmp_path / "store")
    return ParquetStore(tmp_path / "store")


def test_a_failed_service_blocks_only_itself(config, gated):
    gate = service_freshness(gated, config, END)
    assert gate.pop(BROKEN) == "latest validation failed (batch hour-1): 36 of 108 rows quarantined (33.3%)"
    assert set(gate.values()) == {None}


def test_stale_data_is_refused_and_a_failed_validation_named_first(config, gated):
    later = pd.Timestamp(END) + pd.Timedelta(hours=5)
    gate = service_freshness(gated, config, later)
    assert gate.pop(BROKEN).startswith("latest validation failed (batch hour-1)")
    assert set(gate.values()) == {
        f"stale: newest validated point 2026-10-31T23:55:00+00:00 is older than 0 days 01:00:00 at {later.isoformat()}"}


def test_a_newer_clean_batch_reopens_the_gate(config, fleet, gated, tmp_path):
    rows = fleet.generate(END, NEXT_END).reset_index(drop=True)
    validate_rows(gated, config, rows, "hour-2", "test", END, NEXT_END, now=NEXT_NOW, reports_dir=tmp_path)
    assert set(service_freshness(gated, config, NEXT_END).values()) == {None}
    # as of the first hour's end, the first batch is still the latest one covering orders-api
    assert service_freshness(gated, config, END)[BROKEN].startswith("latest validation failed (batch hour-1)")


def test_an_empty_newer_batch_blocks_every_service(config, hour, gated, tmp_path):
    with_nothing = validate_rows(gated, config, hour.iloc[0:0], "empty", "test", START, NEXT_END, now=NEXT_NOW, reports_dir=tmp_path)
    assert with_nothing["status"] == "failed" and with_nothing["failed_services"] == ["*"]
    assert set(service_freshness(gated, config, NEXT_END).values()) == {"latest validation failed (batch empty): empty batch"}


def test_every_skip_is_audited_once_per_step_and_time(config, gated):
    for _ in range(2):  # a re-run replaces its records
        reasons = gate_services(gated, config, END, Step.SCALING)
    gate_services(gated, config, END, Step.FORECAST, [BROKEN, "search-api"])
    audit = gated.read("audit", kind="gate").sort_values("action")
    assert audit[["service", "action", "status"]].values.tolist() == [[BROKEN, "forecast", "skipped"], [BROKEN, "scaling", "skipped"]]
    assert audit["reason"].tolist() == [reasons[BROKEN]] * 2
    assert set(audit["run_id"]) == {f"as_of {pd.Timestamp(END).isoformat()}"}


def test_every_decision_step_skips_only_the_failed_service(config, gated):
    decisions = {d["service"]: d for d in act.plan_all_scaling(gated, config, END).decisions}
    assert (decisions[BROKEN]["action"], decisions[BROKEN]["rule"]) == ("skip", "freshness_gate")
    assert decisions[BROKEN]["reason"].startswith("latest validation failed (batch hour-1)")
    assert all(d["rule"] != "freshness_gate" for s, d in decisions.items() if s != BROKEN)
    plans = {p["service"]: p for p in act.plan_all_warming(gated, config, END).plans}
    assert plans[BROKEN]["skip_reason"].startswith("latest validation failed")
    assert all(not (p["skip_reason"] or "").startswith(("latest validation", "stale")) for s, p in plans.items() if s != BROKEN)
    steps = set(gated.read("audit", kind="gate", service=BROKEN)["action"])
    assert steps == {"scaling", "warming"}


def test_thresholds_are_per_tier(config, hour, store, tmp_path):
    # one metric in nine bad everywhere (11 %): above the enterprise (10 %) and critical (5 %) thresholds only
    summary = validate_rows(store, config, _all_bad(hour), "tiers", "test", START, END, now=NOW,
                            reports_dir=tmp_path)
    expected = sorted(s.name for s in config.services if s.tier.value in ("enterprise", "critical"))
    assert summary["failed_services"] == expected
    results = store.read("validation_results", batch_id="tiers").set_index("service")
    assert results.loc["payments-gateway", "max_failure_ratio"] == 0.05 and results.loc["blog-frontend", "max_failure_ratio"] == 0.2


def _all_bad(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out.loc[out["metric"] == "error_rate", "value"] = 2.0
    return out
