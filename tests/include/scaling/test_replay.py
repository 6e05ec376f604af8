"""Policy replay: stored sample-fleet history and any demand trace through the scaling kernel, and its CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import DataError
from include.headroom.scaling.kernel import kernel_settings
from include.headroom.scaling.settings import policy_settings
from include.headroom.scaling.replay import ReplaySettings, SimulatedService, replay, replay_trace, simulate, simulated_service
from tests.conftest import ANCHOR

END = pd.Timestamp(ANCHOR, tz="UTC")
START = END - pd.Timedelta(days=7)
SERVICES = ["checkout-api", "docs-site", "orders-api"]


@pytest.fixture(scope="module")
def stored(fleet_history, tmp_path_factory):
    """The sample fleet's 21 days written to and read back from a real store."""
    from include.headroom.store import ParquetStore

    store = ParquetStore(tmp_path_factory.mktemp("replay") / "store")
    store.upsert("metrics", fleet_history[fleet_history["metric"].isin(["throughput", "replicas"])].assign(batch_id="replay-test"))
    return store


@pytest.fixture(scope="module")
def rows(config, stored):
    history = stored.read_metrics(metrics=["throughput", "replicas"], start=START - pd.Timedelta(days=14), end=END)
    return replay(config, history, START, END, SERVICES, policies=["reactive", "combined"], with_actual=True)


def test_one_row_per_service_and_policy_plus_totals(rows):
    assert len(rows) == 3 * len(SERVICES) + 3
    totals = {r["policy"]: r for r in rows if r["service"] == "TOTAL"}
    for policy in ("actual", "reactive", "combined"):
        mine = [r for r in rows if r["policy"] == policy and r["service"] != "TOTAL"]
        assert totals[policy]["replica_hours"] == pytest.approx(sum(r["replica_hours"] for r in mine), abs=0.05)
        assert totals[policy]["slo_violation_minutes"] == pytest.approx(sum(r["slo_violation_minutes"] for r in mine), abs=0.05)


def test_figures_are_plausible(config, rows):
    by = {(r["service"], r["policy"]): r for r in rows}
    for name in SERVICES:
        svc = config.service(name)
        for policy in ("actual", "reactive", "combined"):
            r = by[(name, policy)]
            assert svc.min_replicas * 7 * 24 - 1 <= r["replica_hours"] <= svc.max_replicas * 7 * 24
            assert r["cost_usd"] == pytest.approx(r["replica_hours"] * svc.cost_per_replica_hour, abs=0.02)
        # the forecasts (trained on the week before, refitted daily) pass the trust gate most of the time
        assert by[(name, "combined")]["floor_trusted_share"] > 0.5
    # the checkout-api traffic surge (1.7x for 3 h) exceeds what max replicas serve: violation minutes show it
    assert by[("checkout-api", "reactive")]["slo_violation_minutes"] >= 60
    assert by[("docs-site", "reactive")]["slo_violation_minutes"] == 0


def _ramp(step="5min", days=3):
    ds = pd.date_range("2026-01-05", periods=days * 24 * 12, freq=step, tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    return ds, 200 + 1000 * np.clip((hour - 8.0) / 0.5, 0, 1) * np.clip((20 - hour) / 0.5, 0, 1)


def test_reactive_follows_the_load_and_a_sharp_ramp_violates(config):
    svc = config.service("orders-api")
    settings = policy_settings()
    rs = ReplaySettings.from_settings(settings)
    ds, load = _ramp()
    sim, ks = simulated_service(config, svc, settings), kernel_settings(config, svc, settings)
    r = simulate(ds, load, sim, ks, "reactive", rs, cost_per_replica_hour=0.1, replicas_for=lambda v: config.replicas_for(svc, v))
    # every morning the load jumps 6x in 30 minutes: reactive HPA lags (stabilization, cooldown, actuation delay)
    assert r.slo_violation_minutes > 0
    # 1200 req/s needs 10 at 180 x 0.7 per replica; at 9 the CPU (75 %) is inside the HPA's 10 % tolerance
    assert config.replicas_for(svc, 1200.0) - 1 <= max(r.replicas) <= config.replicas_for(svc, 1200.0)
    assert min(r.replicas[-24:]) <= 3                                # and back down at night
    assert sim.latency_ms(0.5) < config.tier(svc.tier).latency_slo.threshold_ms < sim.latency_ms(0.97)


def test_a_perfect_forecast_removes_the_ramp_violations(config):
    """The predictive floor (upper quantile at the lead time) puts replicas in place before the ramp."""
    from include.headroom.scaling.replay import ForecastTrack

    svc = config.service("orders-api")
    settings = policy_settings()
    rs = ReplaySettings.from_settings(settings)
    ds, load = _ramp()
    perfect = ForecastTrack(load.copy(), load * 1.05, 1, ("oracle",))
    kw = dict(cost_per_replica_hour=0.1, replicas_for=lambda v: config.replicas_for(svc, v), forecast=perfect)
    sim, ks = simulated_service(config, svc, settings), kernel_settings(config, svc, settings)
    reactive = simulate(ds, load, sim, ks, "reactive", rs, **kw)
    combined = simulate(ds, load, sim, ks, "combined", rs, **kw)
    assert combined.floor_trusted_share > 0.9
    assert combined.slo_violation_minutes < 0.5 * reactive.slo_violation_minutes


def test_a_noisy_trace_is_trusted_by_the_coverage_of_its_upper_forecast(config):
    """30 % step noise: the median's MAPE (~24 %) fails the MAPE gate, but the upper forecast covers the loads,
    so the floor holds and removes most of reactive's violations; without the coverage rule it never holds."""
    from dataclasses import replace

    from include.headroom.scaling.replay import ForecastTrack

    svc = config.service("orders-api")
    settings = policy_settings()
    rs = ReplaySettings.from_settings(settings)
    assert (rs.trust_coverage, rs.floor_utilization, settings.trusted_cpu_target) == (0.8, 0.75, 75.0)
    rng = np.random.default_rng(11)
    ds = pd.date_range("2026-01-05", periods=4 * 288, freq="5min", tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    mean = 600 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 9) / 24))
    load = np.clip(mean * (1 + 0.3 * rng.standard_normal(len(ds))), 0, None)
    track = ForecastTrack(mean, mean * (1 + 1.2816 * 0.3), 1, ("oracle",))  # the 90 % quantile of the noise
    sim, ks = simulated_service(config, svc, settings), kernel_settings(config, svc, settings)
    kw = dict(cost_per_replica_hour=0.1, replicas_for=lambda v: config.replicas_for(svc, v), forecast=track, start=288)
    reactive = simulate(ds, load, sim, ks, "reactive", rs, **kw)
    combined = simulate(ds, load, sim, ks, "combined", rs, **kw)
    mape_only = simulate(ds, load, sim, ks, "combined", replace(rs, trust_coverage=None), **kw)
    assert mape_only.floor_trusted_share < 0.1
    assert combined.floor_trusted_share > 0.9
    assert reactive.slo_violation_minutes > 100
    assert combined.slo_violation_minutes < 0.3 * reactive.slo_violation_minutes


def test_a_flash_crowd_the_forecast_missed_is_sized_from_the_load(config):
    """A 2.2x crowd for 2 hours a day that no forecast knows: the saturated CPU (capped near 97 %) makes the HPA
    step 1.39x at a time, two steps of violation per crowd; the combined policy sizes the scale-out from the
    measured load (``target_tracking.saturated_cpu_utilization``) and only the step before the new replicas
    serve (the actuation delay) violates."""
    from include.headroom.scaling.replay import ForecastTrack

    svc = config.service("orders-api")
    settings = policy_settings()
    rs = ReplaySettings.from_settings(settings)
    ds = pd.date_range("2026-01-05", periods=3 * 288, freq="5min", tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    base = 400 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 9) / 24))
    step = np.arange(len(ds)) % 288
    load = base * np.where((step >= 150) & (step < 174), 2.2, 1.0)
    track = ForecastTrack(base, base * 1.1, 1, ("oracle",))  # a good forecast of everything but the crowd
    sim, ks = simulated_service(config, svc, settings), kernel_settings(config, svc, settings)
    kw = dict(cost_per_replica_hour=0.1, replicas_for=lambda v: config.replicas_for(svc, v), forecast=track)
    reactive = simulate(ds, load, sim, ks, "reactive", rs, **kw)
    predictive = simulate(ds, load, sim, ks, "predictive", rs, **kw)
    combined = simulate(ds, load, sim, ks, "combined", rs, **kw)
    assert max(combined.replicas) < svc.max_replicas  # every violation here is avoidable with enough replicas
    assert reactive.slo_violation_minutes == predictive.slo_violation_minutes == 3 * 2 * 5.0
    assert combined.slo_violation_minutes == 3 * 1 * 5.0
    # the crowd's first decision goes to what the load needs (10 at 180 x 0.7 per replica), reactive to ceil(5 x 97 / 70) = 7
    assert (reactive.replicas[150:153], combined.replicas[150:153]) == ([5, 7, 10], [5, 10, 10])
    assert combined.replica_hours <= reactive.replica_hours * 1.05


def test_a_floor_holds_the_forecast_load_at_the_configured_utilization():
    from include.headroom.scaling.policy import floor_replicas

    assert floor_replicas(1400.0, 100.0, 0.7, lambda v: 0) == 20   # ceil(1400 / 70)
    assert floor_replicas(1401.0, 100.0, 0.7, lambda v: 0) == 21
    assert floor_replicas(-5.0, 100.0, 0.7, lambda v: 0) == 0
    assert floor_replicas(1400.0, 100.0, None, lambda v: int(v // 50)) == 28  # unset: the CPU-target formula


def test_forecasts_in_the_replay_never_see_data_after_the_decision(config):
    """Changing the load from step k on changes no forecast a decision before k reads (refits use the past only)."""
    from include.headroom.scaling.replay import forecast_track

    rng = np.random.default_rng(5)
    ds = pd.date_range("2026-03-02", periods=10 * 288, freq="5min", tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    load = 400 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 9) / 24)) * (1 + 0.03 * rng.standard_normal(len(ds)))
    rs = ReplaySettings()
    start = 8 * 288
    k = 9 * 288 - 1  # one step before the day-9 refit: a forecast for k + lead fitted at the refit would see k
    changed = load.copy()
    changed[k:] *= 3.0
    a, b = forecast_track(ds, load, config.forecasting, rs, start), forecast_track(ds, changed, config.forecasting, rs, start)
    assert a.refits == b.refits == 2
    lead = int(np.ceil(rs.lead_time_s / 300))
    for i in range(start, k):
        for quantile in ("upper", "median"):
            assert a.ahead(i, lead, quantile) == b.ahead(i, lead, quantile), (i, quantile)
    np.testing.assert_array_equal(a.yhat[:k], b.yhat[:k])
    # the check can fail: four hours of tripled load before the day-9 refit show in the forecasts it makes
    longer = load.copy()
    longer[9 * 288 - 48:] *= 3.0
    c = forecast_track(ds, longer, config.forecasting, rs, start)
    assert c.ahead(9 * 288, lead, "median") > 1.5 * a.ahead(9 * 288, lead, "median")
    assert c.ahead(9 * 288 - 49, lead, "median") == a.ahead(9 * 288 - 49, lead, "median")


def test_empty_window_and_missing_service_are_named(config, fleet_history):
    with pytest.raises(DataError, match=r"replay window .* is empty"):
        replay(config, fleet_history, END, START)
    with pytest.raises(DataError, match="service 'orders-api' has no throughput between"):
        replay(config, fleet_history[fleet_history["service"] != "orders-api"], START, END, ["orders-api"])
    with pytest.raises(DataError, match=r"unknown policies \['hopeful'\]"):
        replay_trace(*_ramp(), SimulatedService(100, 10, 50), None, ["hopeful"], config.forecasting, ReplaySettings(),
                     cost_per_replica_hour=0.1, replicas_for=lambda v: 1)


def test_cli_store_mode_prints_each_policy(capsys):
    from include.headroom.__main__ import main

    assert main(["replay", "--from", "2026-10-31T00:00Z", "--to", "2026-11-01T00:00Z", "--services", "checkout-api,orders-api",
                 "--sample-fleet", ANCHOR, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = {(s, p) for s in ("checkout-api", "orders-api", "TOTAL") for p in ("reactive", "combined")}
    assert {(r["service"], r["policy"]) for r in out} == expected
    assert main(["replay", "--from", "2026-11-01", "--to", "2026-10-31", "--sample-fleet", ANCHOR]) == 2
    assert "is empty" in capsys.readouterr().err


def test_cli_replays_a_trace_file(tmp_path, capsys):
    """A 12-day trace at 10-minute steps with zones, duplicates and a gap: forecasts from day 10 on."""
    from include.headroom.__main__ import main

    rng = np.random.default_rng(3)
    ds = pd.date_range("2026-02-02", periods=12 * 144, freq="10min", tz="UTC")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    load = 500 * (1 + 0.6 * np.sin(2 * np.pi * (hour - 9) / 24)) * (1 + 0.03 * rng.standard_normal(len(ds)))
    stamps = [t.tz_convert("Europe/Berlin").isoformat() if i % 2 else t.strftime("%Y-%m-%dT%H:%M:%SZ") for i, t in enumerate(ds)]
    frame = pd.DataFrame({"timestamp": stamps, "value": load.round(3)})
    frame = pd.concat([frame, frame.iloc[[5, 6]]]).drop(index=range(300, 306))  # two duplicates, a one-hour gap
    path = tmp_path / "trace.csv"
    frame.sample(frac=1.0, random_state=1).to_csv(path, index=False)
    out_path, png = tmp_path / "out" / "replay.json", tmp_path / "replay.png"
    assert main(["replay", "--load", str(path), "--capacity-per-replica", "100", "--min-replicas", "2", "--max-replicas", "20",
                 "--tier", "professional", "--policies", "reactive,predictive,combined,scheduled", "--output", str(out_path),
                 "--plot", str(png)]) == 0
    out = json.loads(out_path.read_text())
    assert json.loads(capsys.readouterr().out)["policies"] == out["policies"]
    assert set(out["policies"]) == {"reactive", "predictive", "combined", "scheduled"}
    for figures in out["policies"].values():
        assert set(figures) >= {"slo_violation_minutes", "replica_hours", "cost_usd", "scale_actions"}
        assert 2 * 12 * 24 - 1 <= figures["replica_hours"] <= 20 * 12 * 24
        assert figures["cost_usd"] == pytest.approx(figures["replica_hours"] * 0.10, abs=0.02)
    # the trace is coarser than the 5-minute decision period: interpolated to it; the gap is counted, not filled
    assert out["trace"]["step_s"] == 300 and out["trace"]["duplicates_averaged"] == 2 and out["trace"]["missing_steps"] >= 6
    assert out["policies"]["scheduled"] == {**out["policies"]["reactive"]}  # no scheduled rule names this trace
    assert out["policies"]["predictive"]["floor_trusted_share"] > 0  # the engine's forecasts are used in the last days
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("content", "match"), [
    ("ts,value\n2026-01-01T00:00Z,1\n", r"columns \['timestamp'\] are missing"),
    ("timestamp,value\n2026-01-01T00:00Z,1\nyesterday,2\n2026-01-01T00:10Z,3\n", r"line 3: field 'timestamp' = 'yesterday'"),
    ("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T00:05Z,-4\n2026-01-01T00:10Z,3\n",
     r"line 3: field 'value' = '-4' is not a request rate"),
])
def test_bad_trace_files_are_named(tmp_path, capsys, content, match):
    from include.headroom.__main__ import main

    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["replay", "--load", str(path), "--capacity-per-replica", "100", "--min-replicas", "1", "--max-replicas", "5",
                 "--tier", "basic", "--output", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert re.search(match, err)
    assert main(["replay", "--load", str(path), "--tier", "basic"]) == 2
    assert "--capacity-per-replica" in capsys.readouterr().err
