"""The causal anomaly scorer: causality, seasons, robustness to outliers, precision on the sample fleet, input errors, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from include.headroom.anomalies import score
from include.headroom.exceptions import DataError
from tests.conftest import PROJECT_ROOT

WEEK = 2016 + 2  # points before a weekly season (with its neighbours) is known


def seasonal_series(days: int = 14, seed: int = 7) -> pd.DataFrame:
    """5-minute points: a daily sine, 25 % lower at weekends, 2 % noise."""
    ts = pd.date_range("2026-10-01", periods=days * 288, freq="5min", tz="UTC")
    hour = ts.hour + ts.minute / 60
    weekend = np.where(ts.dayofweek >= 5, 0.75, 1.0)
    rng = np.random.default_rng(seed)
    value = 100 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 8) / 24)) * weekend * (1 + 0.02 * rng.standard_normal(len(ts)))
    return pd.DataFrame({"timestamp": ts, "value": value})


def test_scores_are_in_unit_interval_and_rows_keep_their_order():
    df = seasonal_series().sample(frac=1.0, random_state=3)
    out = score(df)
    assert list(out.columns) == ["timestamp", "value", "anomaly_score"]
    assert out.index.equals(df.index) and out["value"].equals(df["value"])
    assert out["anomaly_score"].between(0, 1).all()
    assert list(df.columns) == ["timestamp", "value"]  # the caller's frame is untouched


def test_appending_future_points_never_changes_past_scores():
    df = seasonal_series(days=12)
    df.loc[3000:3010, "value"] *= 1.8  # an incident inside the prefix
    full = score(df)["anomaly_score"].to_numpy()
    for cut in (300, 2016, 2500, 3005):
        prefix = score(df.iloc[:cut])["anomaly_score"].to_numpy()
        np.testing.assert_array_equal(prefix, full[:cut])


def test_a_sustained_shift_is_found_and_a_clean_seasonal_series_is_quiet():
    df = seasonal_series(days=21)
    clean = score(df)
    # weekends, daily ramps and noise: nothing fires once a week of history is known (the first weekend
    # is news to a detector that has seen only weekdays)
    assert (clean["anomaly_score"].iloc[WEEK:] > 0.5).sum() == 0
    shifted = df.copy()
    incident = slice(5000, 5024)  # two hours at 1.6x
    shifted.loc[incident, "value"] *= 1.6
    scores = score(shifted)["anomaly_score"]
    assert (scores.loc[incident] > 0.5).mean() >= 0.9
    assert (scores.drop(index=range(5000, 5030)).iloc[WEEK:] > 0.5).sum() == 0


def test_an_outlier_in_the_history_does_not_echo_a_week_later():
    df = seasonal_series(days=21)
    df.loc[2016 + 100, "value"] *= 5  # one wild point
    scores = score(df)["anomaly_score"]
    assert scores.loc[2016 + 100] > 0.9  # a lone point far enough out is itself anomalous
    for weeks in (1, 2, 3):  # its slot in the following weeks (and the days after) stays quiet
        later = 2016 + 100 + weeks * 2016
        if later < len(df):
            assert scores.loc[later] < 0.5
    assert (scores.iloc[WEEK:] > 0.5).sum() == 1


def test_a_lone_moderate_blip_is_not_paged_but_two_in_a_row_are():
    df = seasonal_series(days=21)
    single, double = df.copy(), df.copy()
    single.loc[5000, "value"] *= 1.15
    double.loc[5000:5001, "value"] *= 1.15
    assert score(single)["anomaly_score"].loc[5000] < 0.5
    assert score(double)["anomaly_score"].loc[5001] > 0.5


def test_step_signals_like_replicas_are_not_anomalous_per_unit_step():
    ts = pd.date_range("2026-10-01", periods=10 * 288, freq="5min", tz="UTC")
    replicas = np.where((ts.hour >= 9) & (ts.hour < 18), 4.0, 3.0)
    replicas[(ts.hour == 12) & (ts.dayofweek == 2)] = 5.0  # one more than usual for an hour
    scores = score(pd.DataFrame({"timestamp": ts, "value": replicas}))["anomaly_score"]
    assert (scores.iloc[288:] > 0.5).sum() == 0  # after the first day, which shows the first step ever seen


def test_precision_on_the_sample_fleet(config, fleet, fleet_history):
    """Every series of every service over 14 clean days: almost nothing fires; the injected incidents do."""
    rows = fleet_history[fleet_history["ts"] >= fleet.anchor - pd.Timedelta(days=21)]
    truths = [t for t in fleet.ground_truth() if t.kind != "saturation"]
    fired = clean = 0
    for (service, metric), group in rows.groupby(["service", "metric"]):
        scored = score(group.rename(columns={"ts": "timestamp"})[["timestamp", "value"]])
        late = scored["timestamp"] >= fleet.anchor - pd.Timedelta(days=14)
        near = np.zeros(len(scored), bool)
        for t in truths:
            if t.service == service:
                near |= ((scored["timestamp"] >= pd.Timestamp(t.start) - pd.Timedelta(hours=1))
                         & (scored["timestamp"] <= pd.Timestamp(t.end) + pd.Timedelta(hours=24))).to_numpy()
        quiet = late.to_numpy() & ~near
        fired += int((scored["anomaly_score"].to_numpy()[quiet] > 0.5).sum())
        clean += int(quiet.sum())
    assert fired / clean < 0.001  # under one point in a thousand
    for t in truths:
        if t.kind == "memory_leak":
            continue  # a slow ramp is the leak rule's job, not a point anomaly
        series = rows[(rows["service"] == t.service) & (rows["metric"] == t.expected_cause)]
        scored = score(series.rename(columns={"ts": "timestamp"})[["timestamp", "value"]])
        inside = (scored["timestamp"] >= pd.Timestamp(t.start)) & (scored["timestamp"] < pd.Timestamp(t.end))
        assert (scored.loc[inside, "anomaly_score"] > 0.5).mean() >= 0.8, t.kind


@pytest.mark.parametrize(("frame", "match"), [
    (pd.DataFrame({"ts": ["2026-01-01"], "value": [1.0]}), r"input: missing columns \['timestamp'\]"),
    (pd.DataFrame({"timestamp": ["2026-01-01T00:00Z", "yesterday"], "value": [1.0, 2.0]}), "row 1: timestamp 'yesterday' is not a timestamp"),
    (pd.DataFrame({"timestamp": ["2026-01-01T00:00Z", "2026-01-01T00:05Z"], "value": ["1", "abc"]}), "row 1: value 'abc' is not a number"),
    (pd.DataFrame({"timestamp": ["2026-01-01T00:00Z", "2026-01-01T00:00Z"], "value": [1.0, 2.0]}), r"rows \[0, 1\]: duplicate timestamp"),
])
def test_bad_input_names_the_row(frame, match):
    with pytest.raises(DataError, match=match):
        score(frame)


def test_missing_values_score_zero_and_do_not_break_the_rest():
    df = seasonal_series(days=9)
    df.loc[2000:2005, "value"] = np.nan
    df.loc[2300:2302, "value"] *= 2.0
    scores = score(df)["anomaly_score"]
    assert (scores.loc[2000:2005] == 0).all()
    assert (scores.loc[2301:2302] > 0.5).all()


def test_cli_writes_the_contract_columns(tmp_path):
    df = seasonal_series(days=9)
    df.loc[2300:2305, "value"] *= 2.0
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(src, index=False)
    proc = subprocess.run([sys.executable, "-m", "include.headroom", "anomalies", "--input", str(src), "--output", str(out)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out)
    assert list(written.columns) == ["timestamp", "value", "anomaly_score"]
    assert len(written) == len(df)
    np.testing.assert_allclose(written["value"], df["value"])
    np.testing.assert_allclose(written["anomaly_score"], score(df)["anomaly_score"], atol=1e-6)
    assert (written.loc[2301:2305, "anomaly_score"] > 0.5).all()

    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T00:05Z,oops\n")
    proc = subprocess.run([sys.executable, "-m", "include.headroom", "anomalies", "--input", str(bad), "--output", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert proc.returncode == 2 and f"{bad}: row 1: value 'oops' is not a number" in proc.stderr
    assert not (tmp_path / "o.csv").exists()


def _series_at(freq: str, days: int, seed: int = 11) -> pd.DataFrame:
    """A daily sine with 2 % noise at resolution ``freq``."""
    ts = pd.date_range("2026-09-01", periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq, tz="UTC")
    hour = ts.hour + ts.minute / 60
    value = 100 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 8) / 24)) * (1 + 0.02 * np.random.default_rng(seed).standard_normal(len(ts)))
    return pd.DataFrame({"timestamp": ts, "value": value})


@pytest.mark.parametrize("freq, days, incident", [("1min", 9, slice(11000, 11020)), ("1h", 30, slice(600, 604)), ("1D", 120, slice(100, 102))])
def test_other_resolutions_are_inferred_causal_and_find_a_shift(freq, days, incident):
    from include.headroom.anomalies import default_params, infer_step

    df = _series_at(freq, days)
    step = int(pd.Timedelta(freq).total_seconds())
    seconds = (df["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    assert infer_step(seconds) == step
    params = default_params().for_step(step)
    assert params.step_s == step and params.level_window_points == max(12, round(86400 / step))
    clean = score(df)["anomaly_score"]
    assert (clean.iloc[len(df) // 2:] > 0.5).sum() == 0  # quiet once history is known
    df.loc[incident, "value"] *= 2.0
    full = score(df)["anomaly_score"].to_numpy()
    assert (full[incident] > 0.5).mean() >= 0.5
    for cut in (incident.start - 1, incident.start + 1, len(df) - 5):
        np.testing.assert_array_equal(score(df.iloc[:cut])["anomaly_score"].to_numpy(), full[:cut])


def test_explicit_params_are_used_as_given():
    from include.headroom.anomalies import default_params

    df = _series_at("1h", 20)
    # hourly points read on the 5-minute grid: every slot between them is empty, no run is ever confirmed
    assert not np.array_equal(score(df, default_params())["anomaly_score"], score(df)["anomaly_score"])
