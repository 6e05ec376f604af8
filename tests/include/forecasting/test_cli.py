"""``python -m include.headroom forecast``: a CSV round trip and the error messages for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

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
    assert summary["scores"]["auto"]["mase"] <= summary["scores"]["seasonal_naive"]["mase"]
    assert summary["seasonal_periods"] == [96] and summary["level_shifts_at"] == []  # a daily season, a steady trend: no break
    assert 0.0 <= summary["scores"]["auto"]["coverage"] <= 1.0 and summary["scores"]["auto"]["origins"] == 5
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
         "2026-01-01T03:30:00,2\n",
         r"line 4: timestamps are irregular: .*01:00:00.* -> .*01:30:00.* is not the inferred step 0 days 01:00:00"),
        ("timestamp,value\n", r"no data rows below the header"),
        ("timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T00:00:00,2\n2026-01-01T01:00:00,2\n", r"3 distinct timestamps|2 distinct"),
        ("timestamp,value\n" + "".join(f"2026-01-01T{h:02d}:00:00,1\n" for h in (0, 1, 2, 3, 4, 12, 23)),
         r"17 of 24 steps of 0 days 01:00:00 are missing \(the longest gap is 10 steps\)"),
    ],
    ids=["missing-column", "non-numeric", "bad-timestamp", "irregular", "header-only", "too-few-distinct", "too-sparse"],
)
def test_bad_input_is_named(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["forecast", "--input", str(path), "--horizon", "1D", "--output", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ")
    assert re.search(message, err), err
    assert not (tmp_path / "o.csv").exists()


def test_real_world_quirks_are_taken_and_counted(tmp_path, capsys):
    """Duplicates averaged, mixed zones to UTC, jitter moved onto the grid, a gap interpolated; each counted."""
    frame = _write(tmp_path / "clean.csv", days=12, freq="1h")
    lines = [f"{t},{v}" for t, v in zip(frame["timestamp"], frame["value"], strict=True)]
    lines[10] = lines[10].replace(":00:00", ":03:00")  # 3 minutes late: jitter on an hourly grid
    t20 = pd.Timestamp(frame["timestamp"].iloc[20])
    lines[20] = f"{(t20 + pd.Timedelta(hours=2)).isoformat()}+02:00,{frame['value'].iloc[20]}"  # the same instant written in +02:00
    lines.insert(31, lines[30].split(",")[0] + ",1000")  # a duplicate of line 30 with another value
    del lines[40:43]  # three hours missing
    (tmp_path / "in.csv").write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(tmp_path / "o.csv")]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["duplicates_averaged"] == 1 and summary["timestamps_moved_onto_grid"] == 1 and summary["gaps_filled"] == 3
    assert summary["data_points"] == len(frame) and summary["rows"] == len(frame) - 3 + 1
    assert "1 duplicate timestamps averaged" in captured.err and "3 missing steps interpolated" in captured.err
    assert len(pd.read_csv(tmp_path / "o.csv")) == 24


def test_constant_series_gives_finite_json_and_a_flat_forecast(tmp_path, capsys):
    ds = pd.date_range("2026-09-01", periods=24 * 12, freq="1h")
    pd.DataFrame({"timestamp": [d.isoformat() for d in ds], "value": 42.0}).to_csv(tmp_path / "in.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on a constant series
        assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(tmp_path / "o.csv")]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    result = pd.read_csv(tmp_path / "o.csv")
    assert np.allclose(result["yhat"], 42.0) and np.allclose(result["yhat_lower"], 42.0) and np.allclose(result["yhat_upper"], 42.0)


def test_one_extreme_point_is_replaced_and_said(tmp_path, capsys):
    frame = _write(tmp_path / "in.csv", days=12, freq="1h")
    frame.loc[200, "value"] = 1e12
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(tmp_path / "o.csv")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["outliers_replaced"] >= 1 and "outliers replaced" in captured.err
    result = pd.read_csv(tmp_path / "o.csv")
    assert result["yhat_upper"].max() < 200  # the forecast stays at the series' level (about 100 +- 20)
    # A named model is cleaned the same way; with the cleaning turned off the same point wrecks its forecast.
    args = ["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(tmp_path / "o.csv"),
            "--model", "fourier_trend"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["outliers_replaced"] == 1
    assert pd.read_csv(tmp_path / "o.csv")["yhat"].max() < 200
    assert main([*args, "--outlier-z", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["outliers_replaced"] == 0
    assert pd.read_csv(tmp_path / "o.csv")["yhat"].max() > 1e6


def test_unwritable_output_fails_before_any_work(tmp_path, capsys):
    _write(tmp_path / "in.csv", days=12, freq="1h")
    # The input is not even read: a missing input file is not what is reported.
    out = str(tmp_path / "in.csv" / "o.csv")
    assert main(["forecast", "--input", str(tmp_path / "missing.csv"), "--horizon", "1D", "--output", out]) == 2
    assert "o.csv: " in (err := capsys.readouterr().err) and "in.csv is a file, not a folder (checked before computing anything)" in err
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(tmp_path)]) == 2
    assert "is a folder, not a file (checked before computing anything)" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # as root permissions do not stop writes
            assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "1D", "--output", str(locked / "o.csv")]) == 2
            assert "o.csv: Permission denied (checked before computing anything)" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_too_short_history_says_how_much_is_needed(tmp_path, capsys):
    _write(tmp_path / "in.csv", days=3, freq="1h")
    assert main(["forecast", "--input", str(tmp_path / "in.csv"), "--horizon", "7D", "--output", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "history too short: 72 points of 0 days 01:00:00" in err
    assert "needs at least 97 (4 days 01:00:00: 25 to train plus 72 to backtest)" in err


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
