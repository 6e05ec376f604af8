"""The anomaly event detector: input as exporters write it (real files through the CLI's path), events, causality, real PetShop series."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from include.headroom.anomalies import AnomalyParams, default_params, infer_step, score, score_file, score_series
from include.headroom.exceptions import DataError
from scripts.shared_data import petshop_dir
from tests.conftest import PROJECT_ROOT


def seasonal(days: int = 14, freq: str = "5min", seed: int = 7, start: str = "2026-10-01") -> pd.DataFrame:
    """A daily sine, 20 % lower at weekends, 2 % noise."""
    ts = pd.date_range(start, periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq, tz="UTC")
    hour = np.asarray(ts.hour + ts.minute / 60, float)
    weekend = np.where(ts.day_of_week >= 5, 0.8, 1.0)
    rng = np.random.default_rng(seed)
    value = 100 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 8) / 24)) * weekend * (1 + 0.02 * rng.standard_normal(len(ts)))
    return pd.DataFrame({"timestamp": ts, "value": value})


def write(path, frame: pd.DataFrame, fmt: str = "%Y-%m-%dT%H:%M:%SZ"):
    out = frame.copy()
    if pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        out["timestamp"] = out["timestamp"].dt.strftime(fmt)
    out.to_csv(path, index=False)
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "include.headroom", "anomalies", *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)


# ------------------------------------------------------------------------------------------ events


def test_appending_future_points_never_changes_past_scores():
    df = seasonal(days=12)
    df.loc[3000:3010, "value"] *= 1.8  # an incident inside the prefix
    full = score(df)
    for cut in (300, 2016, 2500, 3005):
        prefix = score(df.iloc[:cut])
        np.testing.assert_array_equal(prefix["anomaly_score"].to_numpy(), full["anomaly_score"].to_numpy()[:cut])
        assert prefix["event"].tolist() == full["event"].tolist()[:cut]


def test_an_incident_is_reported_once_early_and_a_clean_series_is_nearly_quiet():
    df = seasonal(days=21)
    clean = score(df)
    assert (clean["event"] == "anomaly").sum() <= 4  # 21 days of a noisy daily/weekly series
    hit = df.copy()
    hit.loc[5000:5011, "value"] *= 1.6  # an hour at 1.6x
    out = score(hit)
    inside = out.loc[5000:5011]
    assert (inside["event"] == "anomaly").sum() == 1  # once ...
    assert inside.index[inside["event"] == "anomaly"][0] <= 5001  # ... and early
    assert inside["anomaly_score"].max() >= default_params().threshold
    # while it lasts, the score stays under the threshold: one page, not twelve
    assert (inside["anomaly_score"] >= default_params().threshold).sum() == 1


def test_a_persisting_change_becomes_the_new_normal_reported_once_as_a_level_shift():
    df = seasonal(days=14)
    df.loc[3000:, "value"] *= 1.4
    out = score(df)
    after = out.loc[3000:]
    assert after["event"].iloc[:3].eq("anomaly").any()
    shifts = after.index[after["event"] == "level_shift"]
    assert len(shifts) == 1 and shifts[0] - 3000 <= default_params().points(default_params().adapt_after_s) + 3
    # a day later the new level is normal: no alarm
    assert (out.loc[3300:3600, "anomaly_score"] < default_params().threshold).all()


def test_the_way_back_after_an_incident_is_not_a_second_event():
    df = seasonal(days=14)
    df.loc[3000:3035, "value"] *= 1.6  # three hours up, then back to normal
    out = score(df)
    assert out.loc[3000, "event"] == "anomaly"
    assert (out.loc[3000:3400, "event"] == "anomaly").sum() == 1  # the return at row 3036 is no new page
    assert out.loc[3036:3060, "anomaly_score"].max() < default_params().threshold
    # a change the other way that is far larger than the incident is news
    worse = df.copy()
    worse.loc[3036:3060, "value"] = 0.0
    assert score(worse).loc[3036:3040, "event"].eq("anomaly").any()


def test_rarer_changes_score_higher_without_ties_at_the_top():
    from include.headroom.anomalies import rarity_score

    decades = np.array([0.0, 4.5, 9.0, 12.0, 30.0, 300.0])
    s = rarity_score(decades, 18.0)
    assert s[0] == 0.0 and s[2] == 0.5 and (np.diff(s) > 0).all() and s[-1] < 1.0
    np.testing.assert_allclose(s[1], 0.25)
    df = seasonal(days=10)
    spikes = {1500: 2.0, 2000: 4.0, 2500: 8.0}
    for row, factor in spikes.items():
        df.loc[row, "value"] *= factor
    out = score(df)
    got = [out.loc[row, "anomaly_score"] for row in spikes]
    assert got[0] < got[1] < got[2] < 1.0 and got[0] >= default_params().threshold


def daily_job(days: int = 14, seed: int = 4) -> pd.DataFrame:
    """A load that doubles from 09:00 to 12:00 every day, the job starting up to 10 minutes early or late."""
    ts = pd.date_range("2026-10-01", periods=days * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(seed)
    minute = np.asarray(ts.hour * 60 + ts.minute)
    start = 540 + rng.choice([-10, -5, 0, 5, 10], days)[np.asarray((ts - ts[0]).days)]
    busy = (minute >= start) & (minute < start + 180)
    return pd.DataFrame({"timestamp": ts, "value": np.where(busy, 70.0, 35.0) * (1 + 0.03 * rng.standard_normal(len(ts)))})


def test_a_recurring_jump_is_not_news_but_a_second_outage_is():
    df = daily_job()
    quiet = score(df)
    # the job's 20 jumps in the last 10 days, early or late, are normal: a few events at most (the earliest starts)
    assert (quiet["event"].iloc[4 * 288:] == "anomaly").sum() <= 3
    hit = df.copy()
    for row in (6 * 288 + 200, 7 * 288 + 200):  # the same outage twice, a day apart
        hit.loc[row: row + 5, "value"] = 0.0
    out = score(hit)
    for row in (6 * 288 + 200, 7 * 288 + 200):
        assert out.loc[row: row + 1, "event"].eq("anomaly").any(), row


def test_a_lone_wild_point_is_found_and_does_not_echo_a_day_or_a_week_later():
    df = seasonal(days=21)
    df.loc[3000, "value"] *= 5
    out = score(df)
    assert out.loc[3000, "event"] == "anomaly" and out.loc[3000, "anomaly_score"] >= 0.9
    for later in (3000 + 288, 3000 + 2016):
        assert out.loc[later - 2: later + 2, "anomaly_score"].max() < default_params().threshold


def test_replicas_steps_are_not_anomalous():
    ts = pd.date_range("2026-10-01", periods=10 * 288, freq="5min", tz="UTC")
    replicas = np.where((ts.hour >= 9) & (ts.hour < 18), 4.0, 3.0)
    out = score(pd.DataFrame({"timestamp": ts, "value": replicas}))
    assert (out["event"].iloc[288:] == "anomaly").sum() == 0


def test_the_model_is_chosen_from_the_data():
    from include.headroom.anomalies import MODELS, detect

    flat = np.random.default_rng(1).normal(100, 2, 21 * 288)
    daily = seasonal(days=21)["value"].to_numpy()
    params = default_params()
    models = detect(np.column_stack([flat, daily]), params).model[-288:]  # both series at once (vectorised)
    assert MODELS[np.bincount(models[:, 0]).argmax()] == "none"
    assert MODELS[np.bincount(models[:, 1]).argmax()] in ("daily", "weekly")


def test_many_series_at_once_give_the_same_scores_as_one_by_one():
    from include.headroom.anomalies import detect

    a, b = seasonal(days=9, seed=1), seasonal(days=9, seed=2)
    b.loc[2000:2010, "value"] *= 2
    params = default_params()
    both = detect(np.column_stack([a["value"], b["value"]]), params)
    np.testing.assert_allclose(both.score[:, 1], detect(b["value"].to_numpy(), params).score[:, 0])
    np.testing.assert_allclose(both.score[:, 0], detect(a["value"].to_numpy(), params).score[:, 0])


# ------------------------------------------------------------------------------------------- input


def test_duplicate_timestamps_are_averaged_and_every_row_keeps_its_score(tmp_path):
    df = seasonal(days=9)
    dup = df.iloc[[1500, 1500, 2200]].copy()
    dup["value"] = [100.0, 140.0, df.loc[2200, "value"]]  # a retry with another value, and an exact duplicate
    with_dups = pd.concat([df, dup]).reset_index(drop=True)
    src, out = write(tmp_path / "dups.csv", with_dups), tmp_path / "out.csv"
    proc = cli("--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 row(s) share a 300-s slot" in proc.stderr and "mean" in proc.stderr
    written = pd.read_csv(out)
    assert len(written) == len(with_dups)
    assert written["timestamp"].tolist() == with_dups["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    # rows sharing a timestamp share a score, and the slot is scored on the mean of its values
    assert written.loc[1500, "anomaly_score"] == written.loc[len(df), "anomaly_score"] == written.loc[len(df) + 1, "anomaly_score"]
    averaged = df.copy()
    averaged.loc[1500, "value"] = (df.loc[1500, "value"] + 100.0 + 140.0) / 3
    np.testing.assert_allclose(written["anomaly_score"].iloc[: len(df)], score(averaged)["anomaly_score"], atol=1e-6)


def test_naive_timestamps_are_utc_and_offsets_are_honoured(tmp_path):
    df = seasonal(days=8)
    df.loc[1800:1805, "value"] *= 1.7
    reference = score(df)["anomaly_score"].to_numpy()
    naive = write(tmp_path / "naive.csv", df, "%Y-%m-%d %H:%M:%S")
    offset = df.assign(timestamp=df["timestamp"].dt.tz_convert("Asia/Kolkata").map(lambda t: t.isoformat()))
    for src in (naive, write(tmp_path / "offset.csv", offset)):
        out = tmp_path / f"{src.stem}.out.csv"
        score_file(str(src), str(out))
        np.testing.assert_allclose(pd.read_csv(out)["anomaly_score"], reference, atol=1e-6)


@pytest.mark.parametrize("naive", [False, True])
def test_local_time_across_dst_changes(tmp_path, naive):
    utc = pd.date_range("2026-10-20", periods=10 * 288, freq="5min", tz="UTC")  # Berlin falls back on 2026-10-25
    local = utc.tz_convert("Europe/Berlin")
    hour = np.asarray(local.hour + local.minute / 60, float)
    value = 300 * (1 + 0.4 * np.sin(2 * np.pi * (hour - 8) / 24)) * (1 + 0.02 * np.random.default_rng(3).standard_normal(len(utc)))
    stamps = local.strftime("%Y-%m-%dT%H:%M:%S") if naive else [t.isoformat() for t in local]
    src, out = tmp_path / "dst.csv", tmp_path / "out.csv"
    pd.DataFrame({"timestamp": stamps, "value": value}).to_csv(src, index=False)
    proc = cli("--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out)
    assert len(written) == len(utc)
    if naive:  # read as UTC: the repeated local hour is 12 duplicated slots, said on stderr
        assert "12 row(s) share a 300-s slot" in proc.stderr
    else:
        assert "share" not in proc.stderr
        in_utc = score(pd.DataFrame({"timestamp": utc, "value": value}))["anomaly_score"]
        np.testing.assert_allclose(written["anomaly_score"], in_utc, atol=1e-6)
    # read as UTC, naive local time moves the daily shape by an hour at the change: a few events while the model catches up
    assert (written["event"].fillna("") == "anomaly").sum() <= (4 if naive else 2)


def test_jittered_timestamps_infer_the_step_and_map_back(tmp_path):
    df = seasonal(days=8)
    rng = np.random.default_rng(5)
    df["timestamp"] = df["timestamp"] + pd.to_timedelta(rng.integers(-40, 41, len(df)), unit="s")
    df.loc[2000, "value"] *= 4
    seconds = (df["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    assert infer_step(seconds) == 300
    src, out = write(tmp_path / "jitter.csv", df), tmp_path / "out.csv"
    summary = score_file(str(src), str(out))
    written = pd.read_csv(out, keep_default_na=False)
    assert summary["rows"] == len(df) and written.loc[2000, "event"] == "anomaly"
    assert (written["event"] == "anomaly").sum() <= 3


@pytest.mark.parametrize(("freq", "days", "step"), [("10s", 1, 10), ("1min", 4, 60), ("1h", 60, 3600), ("1D", 400, 86400)])
def test_steps_from_ten_seconds_to_a_day(tmp_path, freq, days, step):
    df = seasonal(days=days, freq=freq)
    n = len(df)
    at = int(0.8 * n)
    df.loc[at: at + 3, "value"] *= 2.5
    seconds = (df["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    assert infer_step(seconds) == step
    src, out = write(tmp_path / f"{freq}.csv", df), tmp_path / "out.csv"
    score_file(str(src), str(out))
    written = pd.read_csv(out, keep_default_na=False)
    assert written.loc[at: at + 1, "event"].eq("anomaly").any()
    assert (written["event"] == "anomaly").sum() <= 4


def test_a_long_gap_does_not_cause_an_alarm_storm(tmp_path):
    df = seasonal(days=14)
    gapped = df.drop(index=range(2000, 2000 + 3 * 288)).reset_index(drop=True)  # three days missing
    src, out = write(tmp_path / "gap.csv", gapped), tmp_path / "out.csv"
    score_file(str(src), str(out))
    written = pd.read_csv(out, keep_default_na=False)
    resumed = written.iloc[2000:2000 + 288]
    assert (resumed["event"] == "anomaly").sum() <= 1
    assert (resumed["anomaly_score"] >= 0.5).sum() <= 1


def test_constant_series_write_no_nan_and_no_runtime_warning(tmp_path):
    ts = pd.date_range("2026-10-01", periods=3 * 288, freq="5min", tz="UTC")
    src, out = write(tmp_path / "const.csv", pd.DataFrame({"timestamp": ts, "value": 3.0})), tmp_path / "out.csv"
    proc = cli("--input", str(src), "--output", str(out))  # -W error::RuntimeWarning: a numpy warning fails the run
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr and "constant" in proc.stderr
    text = out.read_text()
    assert "nan" not in text.lower() and "inf" not in text.lower()
    written = pd.read_csv(out, keep_default_na=False)
    assert (written["anomaly_score"] < 0.1).all() and (written["event"] == "").all()
    stepped = pd.DataFrame({"timestamp": ts, "value": np.where(np.arange(len(ts)) < 600, 3.0, 6.0)})
    proc = cli("--input", str(write(tmp_path / "step.csv", stepped)), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out, keep_default_na=False)
    assert written.loc[600, "event"] == "anomaly" and (written["event"] == "anomaly").sum() == 1


def test_near_constant_series_only_alarm_on_a_real_change():
    ts = pd.date_range("2026-10-01", periods=4 * 288, freq="5min", tz="UTC")
    value = 50.0 + 1e-6 * np.random.default_rng(2).standard_normal(len(ts))
    value[800] = 50.5
    out = score(pd.DataFrame({"timestamp": ts, "value": value}))
    assert out.loc[800, "event"] == "anomaly" and (out["event"] == "anomaly").sum() == 1


def test_too_short_series_score_zero_and_say_why(tmp_path):
    src = tmp_path / "short.csv"
    src.write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:05:00Z,2\n2026-01-01T00:10:00Z,30\n")
    out = tmp_path / "out.csv"
    proc = cli("--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 valid point(s), fewer than min_history_points=12: too short to score" in proc.stderr
    assert pd.read_csv(out)["anomaly_score"].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("body", "message"), [
    ("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T00:05Z,oops\n", "line 3: field 'value' = 'oops' is not a number"),
    ("timestamp,value\n2026-01-01T00:00Z,1\nyesterday,2\n", "line 3: field 'timestamp' = 'yesterday' is not a timestamp"),
    ("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T00:05Z,inf\n", "line 3: field 'value' = 'inf' is not a finite number"),
    ("ts,value\n2026-01-01T00:00Z,1\n", "columns ['timestamp'] are missing"),  # the wording of the shared reader
    ("", "not a readable CSV"),
])
def test_refusals_name_file_line_and_field(tmp_path, body, message):
    src = tmp_path / "bad.csv"
    src.write_text(body)
    proc = cli("--input", str(src), "--output", str(tmp_path / "o.csv"))
    assert proc.returncode == 2 and f"error: {src}: " in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_anomaly_and_forecast_clis_name_the_same_line(tmp_path):
    rows = [f"2026-01-01T{h:02d}:{m:02d}:00Z,{100 + m}" for h in range(10) for m in range(0, 60, 5)]
    rows[99] = "2026-01-01T08:15:00Z,oops"  # file line 101 (the header is line 1)
    src = tmp_path / "bad.csv"
    src.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    anomaly = cli("--input", str(src), "--output", str(tmp_path / "o.csv"))
    forecast = subprocess.run([sys.executable, "-m", "include.headroom", "forecast", "--input", str(src), "--horizon", "1h",
                               "--output", str(tmp_path / "f.csv")], capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert f"{src}: line 101: field 'value'" in anomaly.stderr
    assert f"{src}: line 101: field 'value'" in forecast.stderr


def test_frames_name_rows_from_zero():
    frame = pd.DataFrame({"timestamp": ["2026-01-01T00:00Z", "later"], "value": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"input: row 1: field 'timestamp' = 'later'"):
        score(frame)


def test_cli_writes_the_contract_columns_and_a_summary(tmp_path):
    df = seasonal(days=9)
    df.loc[2300:2305, "value"] *= 2.0
    src, out = write(tmp_path / "in.csv", df), tmp_path / "out.csv"
    proc = cli("--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    written = pd.read_csv(out, keep_default_na=False)
    assert list(written.columns) == ["timestamp", "value", "anomaly_score", "event"]
    np.testing.assert_allclose(written["value"], df["value"])
    np.testing.assert_allclose(written["anomaly_score"], score(df)["anomaly_score"], atol=1e-6)
    assert written.loc[2300, "event"] == "anomaly" and summary["events"] == (written["event"] == "anomaly").sum()
    assert summary["rows"] == len(df) and summary["threshold"] == 0.5


def test_settings_are_read_from_configuration_and_checked():
    from include.headroom.config import get_config

    raw = get_config().bottlenecks.anomaly
    params = default_params()
    assert params.threshold == raw["threshold"] and params.adapt_after_s == raw["adapt_after_s"]
    assert params.tail_decades == raw["tail_decades"] and params.level_window_s == raw["level_window_s"]
    with pytest.raises(DataError, match=r"unknown keys \['z_mid'\]"):
        AnomalyParams.from_mapping({"z_mid": 6})
    with pytest.raises(DataError, match="threshold"):
        AnomalyParams(threshold=0)


def test_score_series_keeps_input_order_with_unsorted_rows():
    df = seasonal(days=8)
    df.loc[1500, "value"] *= 4
    shuffled = df.sample(frac=1.0, random_state=3)
    seconds = (shuffled["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    scores, events, _ = score_series(seconds, shuffled["value"].to_numpy(), None)
    assert events[list(shuffled.index).index(1500)] == "anomaly"
    np.testing.assert_allclose(pd.Series(scores, index=shuffled.index).sort_index(), score(df)["anomaly_score"], atol=1e-6)


# ------------------------------------------------------------------------------------- real series


def _petshop():
    root = petshop_dir()
    if root is None:
        pytest.skip("petshop-train data set not on this machine (scripts/shared_data.py)")
    return root


def test_real_petshop_normal_latency_is_quiet():
    root = _petshop()
    normal = pd.read_csv(root / "high_traffic" / "noissue.csv.gz")
    series = normal[(normal["service"] == "PetSite") & (normal["metric"] == "latency") & (normal["statistic"] == "Average")]
    out = score(series[["timestamp", "value"]].reset_index(drop=True))
    assert len(out) == 589
    assert (out["event"] == "anomaly").sum() <= 2  # two days of normal operation


def test_real_petshop_issue_is_found_after_its_normal_history(tmp_path):
    root = _petshop()
    normal = pd.read_csv(root / "high_traffic" / "noissue.csv.gz")
    issue = pd.read_csv(root / "high_traffic" / "train" / "issue_0" / "metrics.csv")
    key = lambda f: (f["service"] == "PetSite") & (f["metric"] == "latency") & (f["statistic"] == "Average")  # noqa: E731
    hist = normal[key(normal)].assign(timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))
    now = issue[key(issue)].assign(timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))
    hist = hist.assign(timestamp=hist["timestamp"] - (hist["timestamp"].max() - now["timestamp"].min()) - pd.Timedelta(minutes=5))
    frame = pd.concat([hist, now])[["timestamp", "value"]].reset_index(drop=True)
    src, out = write(tmp_path / "petsite.csv", frame), tmp_path / "out.csv"
    score_file(str(src), str(out))
    written = pd.read_csv(out, keep_default_na=False)
    tail = written.iloc[-5:]  # the issue file: the first bin is before the issue
    assert tail["event"].iloc[1:].eq("anomaly").sum() == 1 and tail["event"].iloc[0] == ""
    assert (written["event"].iloc[:-5] == "anomaly").sum() <= 2
