"""``python -m include.headroom forecast``: a CSV round trip and the error messages for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from include.headroom.__main__ import main
from tests.conftest import PROJECT_ROOT


def _write(path, days=21, freq="15min", trend=0.02, tz=False):
    ds = pd.date_range("2026-09-01", periods=int(days * pd.Timedelta(days=1) / pd.Timedelta(freq)), freq=freq, tz="UTC" if tz else None)
    t = np.arange(len(ds))
    per_day = pd.Timedelta(days=1) / pd.Timedelta(freq)
    y = 100 + trend * t + 20 * np.sin(2 * np.pi * t / per_day) + np.random.default_rng(1).normal(0, 1, len(ds))
    frame = pd.DataFrame({"timestamp": [d.isoformat() for d in ds], "value": y})
    frame.to_csv(path, index=False)
    return frame


def test_round_trip_in_a_subprocess(tmp_path):
    frame = _write(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "include.headroom", "forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "2D",
         "--output", str(out), "--alpha", "0.1"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 192 and summary["step"] == "0 days 00:15:00" and summary["data_points"] == len(frame)
    assert summary["scores"][summary["model"]]["mase"] <= summary["scores"]["seasonal_naive"]["mase"]
    result = pd.read_csv(out)
    assert list(result.columns) == ["timestamp", "yhat", "yhat_lower", "yhat_upper"]
    expected = pd.date_range(pd.Timestamp(frame["timestamp"].iloc[-1]) + pd.Timedelta("15min"), periods=192, freq="15min")
    assert list(result["timestamp"]) == [d.isoformat() for d in expected]  # no zone in, no zone out
    # The truth of the next two days (noise-free) is inside a few units of the forecast.
    t = np.arange(len(frame), len(frame) + 192)
    truth = 100 + 0.02 * t + 20 * np.sin(2 * np.pi * t / 96)
    assert np.mean(np.abs(result["yhat"] - truth)) < 1.0
    assert (result["yhat_lower"] < result["yhat"]).all() and (result["yhat"] < result["yhat_upper"]).all()


def test_hourly_input_with_zone_and_a_named_model(tmp_path, capsys):
    _write(tmp_path / "in.csv", days=10, freq="1h", trend=0.1, tz=True)
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "36h", "--output", str(tmp_path / "o.csv"),
                 "--model", "seasonal_naive"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "seasonal_naive"
    result = pd.read_csv(tmp_path / "o.csv")
    assert len(result) == 36 and result["timestamp"].iloc[0] == "2026-09-11T00:00:00+00:00"


@pytest.mark.parametrize(
    "content,message",
    [
        ("time,value\n2026-01-01,1\n", r"columns \['timestamp'\] are missing"),
        ("timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T01:00:00,abc\n2026-01-01T02:00:00,3\n",
         r"line 3: field 'value' = 'abc' is not a number \(1 such rows\)"),
        ("timestamp,value\n2026-01-01T00:00:00,1\nyesterday,2\n", r"line 3: field 'timestamp' = 'yesterday' is not a timestamp"),
        ("timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T01:00:00,2\n2026-01-01T01:30:00,2\n2026-01-01T02:30:00,2\n"
         "2026-01-01T03:30:00,2\n", r"line 4: timestamps are irregular: .*01:00:00.* -> .*01:30:00.* is not the inferred step 0 days 01:00:00"),
        ("timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T00:00:00,2\n2026-01-01T01:00:00,2\n", r"line 3: timestamp .* appears more than once"),
    ],
    ids=["missing-column", "non-numeric", "bad-timestamp", "irregular", "duplicate"],
)
def test_bad_input_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["forecast", "--input", str(path), "--horizon", "1D", "--output", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ")
    assert re.search(message, err), err
    assert not (tmp_path / "o.csv").exists()


def test_too_short_history_says_how_much_is_needed(tmp_path, capsys):
    _write(tmp_path / "in.csv", days=5, freq="1h")
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "7D", "--output", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "history too short: 120 points of 0 days 01:00:00" in err
    assert "needs at least 240 (10 days 00:00:00: 168 to train plus 72 to backtest)" in err


def test_bad_horizon_model_and_alpha(tmp_path, capsys):
    _write(tmp_path / "in.csv", days=12, freq="1h")
    args = ["forecast", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]
    assert main([*args, "--horizon", "soon"]) == 2
    assert "horizon 'soon' is not a duration; use e.g. 7D" in capsys.readouterr().err
    assert main([*args, "--horizon", "10min"]) == 2
    assert "shorter than one step of the series (0 days 01:00:00)" in capsys.readouterr().err
    assert main([*args, "--horizon", "1D", "--model", "magic"]) == 2
    assert "unknown model 'magic'; models are ['auto'," in capsys.readouterr().err
    assert main([*args, "--horizon", "1D", "--alpha", "0"]) == 2
    assert "alpha=0.0 must be in (0, 1)" in capsys.readouterr().err


def test_horizons_on_the_sample_fleet_meet_their_bands(capsys):
    assert main(["horizons", "--anchor", "2026-11-01", "--json"]) == 0
    bands = json.loads(capsys.readouterr().out)
    assert set(bands) == {"short", "medium", "long"}
    assert [bands[h]["days"] for h in ("short", "medium", "long")] == [30, 90, 365]
    assert bands["long"]["resample"] == "7D" and bands["short"]["band"] == [0.9, 0.95]
    for row in bands.values():
        assert row["series"] == 12 and row["meets_band"] and row["median_accuracy"] >= row["band"][0]


def test_horizons_of_a_csv_too_short_for_the_long_horizon(tmp_path, capsys):
    _write(tmp_path / "daily.csv", days=200, freq="1D")
    assert main(["horizons", "--input", str(tmp_path / "daily.csv")]) == 2
    err = capsys.readouterr().err
    assert "horizon 'long'" in err and "29 7D points cannot hold out 52" in err and "give a longer history" in err
