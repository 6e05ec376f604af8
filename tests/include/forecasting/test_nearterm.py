"""Response time forecast one hour ahead from the newest 5-minute points: the predicted-latency finding fires from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.headroom.bottlenecks.analysis import predicted_findings
from include.headroom.config import load_config
from include.headroom.forecasting.nearterm import nearterm_forecasts, with_nearterm

NOW = pd.Timestamp("2026-11-03T12:30Z")  # the afternoon peak (14:00) is 1.5 h away; the crossing is within the hour


@pytest.fixture(scope="module")
def config():
    return load_config()


def _latency(service: str, slo_ms: float, peak_share: float, seed: int) -> pd.DataFrame:
    """Three days of 5-minute response times with a daily cycle peaking at 14:00 UTC at ``peak_share`` x the SLO."""
    ts = pd.date_range(NOW - pd.Timedelta(days=3), NOW - pd.Timedelta(minutes=5), freq="5min")
    hours = ts.hour + ts.minute / 60.0
    cycle = np.exp(-0.5 * ((hours - 14.0) / 1.5) ** 2)  # quiet at night, a peak in the early afternoon
    rng = np.random.default_rng(seed)
    value = slo_ms * (0.3 + (peak_share - 0.3) * cycle) * (1.0 + 0.01 * rng.standard_normal(len(ts)))
    return pd.DataFrame({"ts": ts, "service": service, "metric": "response_time", "value": value})


def test_latency_heading_over_its_slo_within_the_hour_is_predicted(config):
    hot, calm = config.services[0], config.services[1]
    slo_hot = config.tier(hot.tier).latency_slo.threshold_ms
    slo_calm = config.tier(calm.tier).latency_slo.threshold_ms
    metrics = pd.concat([_latency(hot.name, slo_hot, 1.3, 1), _latency(calm.name, slo_calm, 0.6, 2)], ignore_index=True)
    capacity, forecasts = nearterm_forecasts(config, metrics, [hot.name, calm.name], NOW)
    # One hour ahead at 5 minutes, from the newest point on; both backtests pass the accuracy gate.
    assert capacity.set_index("service")["status"].to_dict() == {hot.name: "ok", calm.name: "ok"}
    assert capacity["trusted"].all() and (capacity["mape"] < 0.05).all()
    hot_fc = forecasts[forecasts["service"] == hot.name]
    assert len(hot_fc) == 12 and hot_fc["ds"].iloc[0] == NOW and hot_fc["ds"].iloc[-1] == NOW + pd.Timedelta(minutes=55)
    # The forecast follows the afternoon ramp as yesterday and the day before: below the SLO now, above it by 13:25.
    ramp = hot_fc.set_index("ds")["yhat"] / slo_hot
    assert ramp.iloc[0] == pytest.approx(0.3 + np.exp(-0.5), rel=0.05) and ramp.iloc[0] < 1.0
    assert ramp.iloc[-1] == pytest.approx(0.3 + np.exp(-0.5 * (35 / 90) ** 2), rel=0.05) and ramp.iloc[-1] > 1.0
    assert (hot_fc["yhat_lower"] <= hot_fc["yhat"]).all() and (hot_fc["yhat"] <= hot_fc["yhat_upper"]).all()

    found = predicted_findings(config, hot, capacity[capacity["service"] == hot.name], NOW, hot_fc)
    assert [(f.type, f.kind, f.root_causes[0].signal) for f in found] == [("cpu_bound", "predicted", "response_time")]
    finding = found[0]
    assert finding.evidence["source"] == "forecast" and finding.evidence["limit"] == slo_hot
    assert finding.confidence > 0.7 and NOW + pd.Timedelta(minutes=10) <= finding.start <= NOW + pd.Timedelta(hours=1)
    assert finding.evidence["yhat"] > slo_hot
    # The calm service peaks at 0.6 x its SLO: nothing predicted.
    assert predicted_findings(config, calm, capacity[capacity["service"] == calm.name], NOW,
                              forecasts[forecasts["service"] == calm.name]) == []


def test_nearterm_replaces_the_daily_runs_latency_rows_and_says_when_history_is_short(config):
    hot, short = config.services[0], config.services[2]
    slo = config.tier(hot.tier).latency_slo.threshold_ms
    daily_cap = pd.DataFrame([{"service": hot.name, "metric": m, "status": "ok", "trusted": True, "model": "daily"}
                              for m in ("throughput", "response_time")])
    daily_fc = pd.DataFrame({"service": hot.name, "metric": ["throughput", "response_time"], "model": "daily",
                             "ds": [NOW, NOW], "yhat": [1.0, 1.0], "yhat_lower": [0.0, 0.0], "yhat_upper": [2.0, 2.0]})
    metrics = pd.concat([_latency(hot.name, slo, 1.3, 3), _latency(short.name, slo, 1.3, 4).tail(100)], ignore_index=True)
    cap, fc = with_nearterm(config, metrics, [hot.name, short.name], NOW, daily_cap, daily_fc)
    assert sorted(zip(cap["service"], cap["metric"], cap["model"] == "daily", strict=True)) == sorted(
        [(hot.name, "throughput", True), (hot.name, "response_time", False), (short.name, "response_time", False)])
    lacking = cap[cap["service"] == short.name].iloc[0]
    assert lacking["status"] == "insufficient_history" and not lacking["trusted"]
    # a day and a step to train, then 5 one-hour origins
    assert lacking["reason"] == "100 5min points of response_time in the last 2 days, 349 needed"
    assert set(fc.loc[fc["metric"] == "response_time", "model"]) != {"daily"} and len(fc[fc["metric"] == "response_time"]) == 12
    assert fc.loc[fc["metric"] == "throughput", "model"].tolist() == ["daily"]


def test_every_services_series_is_cut_in_one_pass_as_series_by_metric_cuts_it():
    from include.headroom.forecasting.capacity import series_by_metric
    from include.headroom.forecasting.nearterm import _slot_means

    a = _latency("a", 400.0, 1.0, 5)
    a = a[(a["ts"] < NOW - pd.Timedelta(hours=7)) | (a["ts"] >= NOW - pd.Timedelta(hours=6))]  # an hour missing inside
    a = pd.concat([a, a.tail(3).assign(value=a.tail(3)["value"] * 2)], ignore_index=True)  # points sharing a slot
    b = _latency("b", 200.0, 0.5, 6).iloc[40:]  # starts later
    cut = _slot_means(pd.concat([b, a], ignore_index=True), ["a", "b", "c"], pd.Timedelta("5min"))
    assert sorted(cut) == ["a", "b"]  # no points, no series
    for name, rows in (("a", a), ("b", b)):
        expected = series_by_metric(rows, ["response_time"], "5min")["response_time"]
        first, y = cut[name]
        assert first == expected["ds"].iloc[0] and np.allclose(y, expected["y"].to_numpy())
    assert len(cut["a"][1]) == 3 * 288 and len(cut["b"][1]) == 3 * 288 - 40
