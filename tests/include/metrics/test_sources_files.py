"""File source: CSV and Parquet with a column mapping, and a clear error for each kind of bad input."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from include.headroom.exceptions import DataError, SchemaError, SourceError
from include.headroom.metrics.files import FileSource
from include.headroom.metrics.source_config import load_source_settings
from include.headroom.steps.ingest import ingest

START, END = pd.Timestamp("2026-10-31T00:00Z"), pd.Timestamp("2026-10-31T01:00Z")


def _settings(paths, **changes):
    base = load_source_settings().files
    columns = {"ts": "time", "service": "svc", "metric": "name", "value": "val", "unit": "unit"}
    return dataclasses.replace(base, paths=tuple(str(p) for p in paths), columns=columns, **changes)


def _csv(path, lines):
    path.write_text("time,svc,name,val,unit,region\n" + "\n".join(lines) + "\n")
    return path


def _lines(fleet_rows):
    return [f"{r.ts.isoformat()},{r.service},{r.metric},{r.value},{r.unit},eu" for r in fleet_rows.itertuples()]


@pytest.fixture
def fleet_rows(fleet):
    rows = fleet.generate(START, END, services=["orders-api"])
    return rows[rows["metric"].isin(["cpu_utilization", "response_time"])].reset_index(drop=True)


def test_csv_and_parquet_give_the_fleet_rows_back(tmp_path, config, fleet_rows):
    half = len(fleet_rows) // 2
    _csv(tmp_path / "a.csv", _lines(fleet_rows.iloc[:half]))
    fleet_rows.iloc[half:].rename(columns={"ts": "time", "service": "svc", "metric": "name", "value": "val"}).to_parquet(
        tmp_path / "b.parquet"
    )
    source = FileSource(_settings([tmp_path / "*.csv", tmp_path / "*.parquet"]), config)
    rows = source.read(START, END)
    want = fleet_rows.assign(labels="", source="files", tier="").sort_values(["service", "metric", "labels", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        rows[["ts", "service", "tier", "metric", "value", "unit"]],
        want[["ts", "service", "tier", "metric", "value", "unit"]],
        check_dtype=False,
    )
    assert set(rows["source"]) == {"files"}  # the tier is left to validation, which looks it up in the catalog


def test_label_columns_and_a_default_unit(tmp_path, config):
    path = tmp_path / "m.csv"
    path.write_text("time,svc,name,val,region\n2026-10-31T00:05:00Z,orders-api,throughput,12.5,eu\n")
    settings = dataclasses.replace(
        _settings([path]),
        columns={"ts": "time", "service": "svc", "metric": "name", "value": "val"},
        default_unit="req/min",
        label_columns=("region",),
    )
    rows = FileSource(settings, config).read(START, END)
    assert rows[["labels", "unit", "value", "tier"]].values.tolist() == [["region=eu", "req/min", 12.5, ""]]


def test_a_missing_column_names_the_file_and_column(tmp_path, config):
    path = tmp_path / "m.csv"
    path.write_text("time,svc,val,unit\n2026-10-31T00:05:00Z,orders-api,1,percent\n")
    with pytest.raises(SchemaError, match=rf"{path} lacks columns \['name'\]"):
        FileSource(_settings([path]), config).read(START, END)


def test_a_bad_timestamp_names_file_row_and_field(tmp_path, config, fleet_rows):
    lines = _lines(fleet_rows.head(3))
    lines[1] = lines[1].replace(lines[1].split(",")[0], "31/10/2026 00:05")
    path = _csv(tmp_path / "m.csv", lines)
    with pytest.raises(DataError, match=rf"{path}: field 'time' is not a timestamp .* at row 3 \(time='31/10/2026 00:05'\)"):
        FileSource(_settings([path]), config).read(START, END)


def test_a_timestamp_format_from_config(tmp_path, config):
    path = _csv(tmp_path / "m.csv", ["31/10/2026 00:05,orders-api,cpu_utilization,41.5,percent,eu"])
    rows = FileSource(_settings([path], timestamp_format="%d/%m/%Y %H:%M"), config).read(START, END)
    assert rows["ts"].tolist() == [pd.Timestamp("2026-10-31T00:05Z")]


def test_a_non_numeric_value_names_file_row_and_field(tmp_path, config, fleet_rows):
    lines = _lines(fleet_rows.head(4))
    parts = lines[3].split(",")
    parts[3] = "fast"
    lines[3] = ",".join(parts)
    path = _csv(tmp_path / "m.csv", lines)
    with pytest.raises(DataError, match=rf"{path}: field 'val' is not numeric at row 5 \(val='fast'\)"):
        FileSource(_settings([path]), config).read(START, END)


def test_exact_duplicates_are_dropped_and_conflicting_ones_refused(tmp_path, config, fleet_rows):
    lines = _lines(fleet_rows.head(3))
    path = _csv(tmp_path / "m.csv", [*lines, lines[0]])
    source = FileSource(_settings([path]), config)
    assert len(source.read(START, END)) == 3 and source.stats["duplicates_dropped"] == 1
    clash = lines[0].split(",")
    clash[3] = "99.0"
    _csv(path, [*lines, ",".join(clash)])
    want = (
        f"series '{clash[2]}' of 'orders-api' at {clash[0]}: field 'value' differs between duplicate rows: "
        f"{path} row 2 (value={float(lines[0].split(',')[3])!r}) and {path} row 5 (value=99.0)"
    )
    with pytest.raises(DataError, match=re.escape(want)):
        source.read(START, END)


def test_rows_out_of_order_are_sorted(tmp_path, config, fleet_rows):
    rows = fleet_rows[fleet_rows["metric"] == "cpu_utilization"].head(6)
    path = _csv(tmp_path / "m.csv", list(reversed(_lines(rows))))
    source = FileSource(_settings([path]), config)
    read = source.read(START, END)
    assert read["ts"].tolist() == rows["ts"].tolist() and read["value"].tolist() == rows["value"].tolist()
    assert source.stats["out_of_order"] == 5


def test_no_matching_file_is_a_source_error_and_keeps_the_watermark(tmp_path, config, store):
    mark = START - pd.Timedelta(minutes=15)
    store.upsert("watermarks", pd.DataFrame([{"source": "source:files", "watermark": mark, "updated_at": mark}]))
    with pytest.raises(SourceError, match=r"no file matches '.*/nothing-\*\.csv'"):
        ingest(store, config, FileSource(_settings([tmp_path / "nothing-*.csv"]), config), START, END)
    assert store.read("watermarks")["watermark"].tolist() == [mark] and store.count("staging") == 0


def test_ingest_from_files_normalizes_units_and_keeps_the_original(tmp_path, config, store, fleet_rows):
    seconds = fleet_rows[fleet_rows["metric"] == "response_time"].assign(value=lambda d: d["value"] / 1000, unit="s")
    path = _csv(tmp_path / "m.csv", _lines(seconds))
    mark = START + pd.Timedelta(minutes=15)
    store.upsert("watermarks", pd.DataFrame([{"source": "source:files", "watermark": mark, "updated_at": mark}]))
    result = ingest(store, config, FileSource(_settings([path]), config), START, END).to_xcom()
    staged = store.query("SELECT ts, value, unit FROM staging ORDER BY ts")
    assert result["rows"] == len(seconds) == 12
    assert staged["value"].tolist() == pytest.approx(fleet_rows.loc[fleet_rows["metric"] == "response_time", "value"].tolist())
    assert set(staged["unit"]) == {"ms"}
    units = store.read("source_units")
    assert units[["source", "service", "metric", "original_unit", "unit", "factor"]].values.tolist() == [
        ["files", "orders-api", "response_time", "s", "ms", 1000.0]
    ]
    assert store.read("watermarks")["watermark"].tolist() == [END]


def test_late_data_inside_the_lookback_is_reread_and_stored(tmp_path, config, store, fleet):
    """A point that reaches the files after its interval was ingested lands with the next run (lookback), once."""
    from include.headroom.steps.validate import validate_pending

    nxt = END + pd.Timedelta(hours=1)
    rows = fleet.generate(START, nxt, services=["orders-api"])
    rows = rows[rows["metric"].isin(["cpu_utilization", "response_time"])].reset_index(drop=True)
    late_ts = END - pd.Timedelta(minutes=5)
    late = (rows["ts"] == late_ts) & (rows["metric"] == "cpu_utilization")
    first_hour = rows["ts"] < END
    path = tmp_path / "m.csv"
    _csv(path, _lines(rows[first_hour & ~late]))
    mark = START + pd.Timedelta(seconds=config.pipeline.lookback_s)
    store.upsert("watermarks", pd.DataFrame([{"source": "source:files", "watermark": mark, "updated_at": mark}]))
    source = FileSource(_settings([path]), config)

    ingest(store, config, source, START, END)
    validate_pending(store, config, now=END + pd.Timedelta(minutes=1), reports_dir=tmp_path / "reports")
    assert store.count("metrics") == int((first_hour & ~late).sum())
    assert (
        store.query("SELECT count(*) AS n FROM metrics WHERE ts = ? AND metric = 'cpu_utilization'", [late_ts.to_pydatetime()])["n"].iloc[0]
        == 0
    )

    _csv(path, _lines(rows[first_hour]) + _lines(rows[~first_hour]))  # the late point arrived, and the next hour
    result = ingest(store, config, source, END, nxt).to_xcom()
    assert result["read_start"] == (END - pd.Timedelta(seconds=config.pipeline.lookback_s)).isoformat()
    assert result["new_rows"] == 1 + int((~first_hour).sum())  # the late point and the new hour; the rest is re-read
    validate_pending(store, config, now=nxt + pd.Timedelta(minutes=1), reports_dir=tmp_path / "reports")
    stored = store.read_metrics(start=START, end=nxt)
    assert len(stored) == len(rows)  # every point once
    got = stored[(stored["ts"] == late_ts) & (stored["metric"] == "cpu_utilization")]["value"].tolist()
    assert got == pytest.approx(rows.loc[late, "value"].tolist())
