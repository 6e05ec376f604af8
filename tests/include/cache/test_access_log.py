"""The sample fleet's access log follows the load model and is deterministic; access log files are checked row by row."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.cache.access_log import load_access_log, read_access_log, sample_access_log, sample_value
from include.headroom.cache.settings import load_cache_settings
from include.headroom.exceptions import DataError, SchemaError


@pytest.fixture(scope="module")
def settings():
    return load_cache_settings().access_log


def test_sample_log_is_deterministic_and_window_independent(fleet, settings):
    end = fleet.anchor - pd.Timedelta(days=1) + pd.Timedelta(hours=14)
    hour = sample_access_log(fleet, settings, "catalog-api", end - pd.Timedelta(hours=1), end)
    again = sample_access_log(fleet, settings, "catalog-api", end - pd.Timedelta(hours=1), end)
    pd.testing.assert_frame_equal(hour, again)
    half = sample_access_log(fleet, settings, "catalog-api", end - pd.Timedelta(minutes=30), end)
    pd.testing.assert_frame_equal(half, hour[hour["ts"] >= end - pd.Timedelta(minutes=30)].reset_index(drop=True))
    assert list(hour.columns) == ["ts", "service", "key", "size_bytes", "hit"]
    assert hour["ts"].is_monotonic_increasing and (hour["ts"] < end).all()
    # one size per key, a Zipf head: the top key takes far more requests than the 100th
    assert (hour.groupby("key")["size_bytes"].nunique() == 1).all()
    counts = hour["key"].value_counts()
    assert counts.iloc[0] > 20 * counts.iloc[min(100, len(counts) - 1)]


def test_sample_log_follows_load_and_hit_ratio(fleet, settings):
    day = fleet.anchor - pd.Timedelta(days=2)  # a weekday in the past
    night = sample_access_log(fleet, settings, "orders-api", day + pd.Timedelta(hours=1), day + pd.Timedelta(hours=2))
    noon = sample_access_log(fleet, settings, "orders-api", day + pd.Timedelta(hours=13), day + pd.Timedelta(hours=14))
    svc = fleet.config.service("orders-api")
    expected = fleet.expected_load(svc, pd.DatetimeIndex([day + pd.Timedelta(hours=13, minutes=30)]))[0] * 3600 * settings.sample_fraction
    assert len(noon) == pytest.approx(expected, rel=0.1)
    assert len(noon) > 1.5 * len(night)
    ratio = fleet.simulate("orders-api", pd.date_range(day + pd.Timedelta(hours=13), periods=12, freq="5min"))["cache_hit_ratio"].mean()
    assert noon["hit"].mean() == pytest.approx(ratio, abs=0.02)


def test_cache_loss_shows_in_the_log(fleet, settings):
    loss = next(i for i in fleet.fleet.incidents if i.kind == "cache_loss")
    start = fleet.anchor + pd.Timedelta(days=loss.start_day)
    during = sample_access_log(fleet, settings, loss.service, start, start + pd.Timedelta(minutes=30))
    before = sample_access_log(fleet, settings, loss.service, start - pd.Timedelta(hours=2), start - pd.Timedelta(hours=1, minutes=30))
    assert during["hit"].mean() < 0.4 < 0.8 < before["hit"].mean()


def test_unknown_service_is_named(fleet, settings):
    with pytest.raises(Exception, match="no-such-api"):
        sample_access_log(fleet, settings, "no-such-api", fleet.anchor - pd.Timedelta(hours=1), fleet.anchor)


def test_file_source_reads_csv_and_jsonl(tmp_path, settings):
    from dataclasses import replace

    (tmp_path / "a-api.csv").write_text("ts,key,size_bytes,hit\n2026-11-20T10:00:01Z,k1,100,hit\n2026-11-20T10:00:00Z,k2,50,miss\n")
    (tmp_path / "b-api.jsonl").write_text('{"ts": "2026-11-20T10:00:00Z", "key": "x", "size_bytes": 7, "hit": true}\n')
    files = replace(settings, source="file", path=str(tmp_path))
    window = pd.Timestamp("2026-11-20T09:00Z"), pd.Timestamp("2026-11-20T11:00Z")
    a = load_access_log(files, "a-api", *window)
    assert a["key"].tolist() == ["k2", "k1"] and a["hit"].tolist() == [False, True] and a["size_bytes"].tolist() == [50, 100]
    assert load_access_log(files, "b-api", *window)["size_bytes"].tolist() == [7]
    with pytest.raises(DataError, match="no access log for 'c-api'"):
        load_access_log(files, "c-api", *window)


def test_bad_file_names_file_row_and_field(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("ts,key,size_bytes,hit\n2026-11-20T10:00:00Z,k1,100,hit\n2026-11-20T10:00:01Z,k2,-5,hit\n")
    with pytest.raises(DataError, match=r"x.csv row 3 field 'size_bytes': '-5' is not valid"):
        read_access_log(bad, "s")
    bad.write_text("ts,key,hit\n2026-11-20T10:00:00Z,k1,hit\n")
    with pytest.raises(SchemaError, match=r"x.csv lacks columns \['size_bytes'\]"):
        read_access_log(bad, "s")
    bad.write_text("ts,key,size_bytes,hit\n2026-11-20T10:00:00Z,k1,1,maybe\n")
    with pytest.raises(DataError, match=r"row 2 field 'hit': 'maybe'"):
        read_access_log(bad, "s")


def test_sample_values_have_the_size_and_differ_per_key():
    assert len(sample_value("a", 1024)) == 1024 and sample_value("a", 10) == sample_value("a", 10) != sample_value("b", 10)


def test_cli_writes_a_log_the_file_source_reads_back(fleet, settings, tmp_path, capsys):
    import json
    from dataclasses import replace

    from include.headroom.__main__ import main

    start, end = fleet.anchor - pd.Timedelta(hours=30), fleet.anchor - pd.Timedelta(hours=29, minutes=50)
    assert main(["access-log", "--service", "catalog-api", "--from", start.isoformat(), "--to", end.isoformat(),
                 "--anchor", str(fleet.anchor.date()), "--out", str(tmp_path / "catalog-api.csv")]) == 0
    printed = json.loads(capsys.readouterr().out)
    back = load_access_log(replace(settings, source="file", path=str(tmp_path)), "catalog-api", start, end)
    direct = sample_access_log(fleet, settings, "catalog-api", start, end)
    assert printed["requests"] == len(back) == len(direct) > 0
    assert back["key"].tolist() == direct["key"].tolist() and back["hit"].tolist() == direct["hit"].tolist()
