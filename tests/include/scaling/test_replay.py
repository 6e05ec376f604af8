"""Policy replay of stored sample-fleet history: reactive alone vs the combined policy, and its CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.headroom.exceptions import DataError
from include.headroom.scaling.policy import policy_settings
from include.headroom.scaling.replay import replay, replay_service, simulated_latency_ms
from tests.conftest import ANCHOR

END = pd.Timestamp(ANCHOR, tz="UTC")
START = END - pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def stored(fleet_history, tmp_path_factory):
    """The sample fleet's 21 days written to and read back from a real store."""
    from include.headroom.store import ParquetStore

    store = ParquetStore(tmp_path_factory.mktemp("replay") / "store")
    store.upsert("metrics", fleet_history[fleet_history["metric"].isin(["throughput", "replicas"])].assign(batch_id="replay-test"))
    return store


@pytest.fixture(scope="module")
def rows(config, stored):
    history = stored.read_metrics(metrics=["throughput", "replicas"], start=START - pd.Timedelta(days=7), end=END)
    return replay(config, history, START, END)


def test_one_row_per_service_and_policy_plus_totals(config, rows):
    assert len(rows) == 2 * len(config.services) + 2
    totals = {r["policy"]: r for r in rows if r["service"] == "TOTAL"}
    for policy in ("reactive", "combined"):
        mine = [r for r in rows if r["policy"] == policy and r["service"] != "TOTAL"]
        assert totals[policy]["replica_hours"] == pytest.approx(sum(r["replica_hours"] for r in mine), abs=0.05)
        assert totals[policy]["slo_violation_minutes"] == sum(r["slo_violation_minutes"] for r in mine)


def test_figures_are_plausible(config, rows):
    by = {(r["service"], r["policy"]): r for r in rows}
    for svc in config.services:
        reactive, combined = by[(svc.name, "reactive")], by[(svc.name, "combined")]
        hours = 7 * 24
        # every step holds between min and max replicas
        assert svc.min_replicas * hours - 1 <= reactive["replica_hours"] <= svc.max_replicas * hours
        # floors only add capacity: never fewer replica-hours, never more violation minutes than reactive alone (+ one step)
        assert combined["replica_hours"] >= reactive["replica_hours"] - 1
        assert combined["slo_violation_minutes"] <= reactive["slo_violation_minutes"] + 5
        assert combined["floor_trusted_share"] > 0.5  # the seasonal forecast passes the trust gate on most days
    # the checkout-api traffic surge (1.7x for 3 h) exceeds what max replicas serve: violation minutes show it
    assert by[("checkout-api", "reactive")]["slo_violation_minutes"] >= 60
    assert by[("docs-site", "reactive")]["slo_violation_minutes"] == 0


def test_reactive_follows_the_load(config):
    svc = config.service("orders-api")
    settings = policy_settings()
    steps = [i * 300.0 for i in range(1, 289)]
    low = replay_service(config, svc, {t: 100.0 for t in steps}, steps, "reactive", settings, 8)
    high = replay_service(config, svc, {t: 1500.0 for t in steps}, steps, "reactive", settings, 2)
    assert low.slo_violation_minutes == 0 and low.replica_hours < 8 * 24 * 0.5  # scaled in from 8 towards 2
    assert high.replica_hours > 2 * 24 * 4                                      # scaled out towards 12
    assert simulated_latency_ms(0.5, svc) < config.tier(svc.tier).latency_slo.threshold_ms < simulated_latency_ms(0.97, svc)


def test_empty_window_and_missing_service_are_named(config, fleet_history):
    with pytest.raises(DataError, match=r"replay window .* is empty"):
        replay(config, fleet_history, END, START)
    with pytest.raises(DataError, match="service 'orders-api' has no throughput between"):
        replay(config, fleet_history[fleet_history["service"] != "orders-api"], START, END, ["orders-api"])


def test_cli_prints_both_policies(capsys):
    from include.headroom.__main__ import main

    assert main(["replay", "--from", "2026-10-31T00:00Z", "--to", "2026-11-01T00:00Z", "--services", "checkout-api,orders-api",
                 "--sample-fleet", ANCHOR, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {(r["service"], r["policy"]) for r in out} == {(s, p) for s in ("checkout-api", "orders-api", "TOTAL") for p in ("reactive", "combined")}
    assert main(["replay", "--from", "2026-11-01", "--to", "2026-10-31", "--sample-fleet", ANCHOR]) == 2
    assert "is empty" in capsys.readouterr().err
