"""Validation with Great Expectations: the bad-input catalogue, each case with its exact outcome, and nothing lost."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from validation_catalogue import CASES, END, NOW, START

from include.headroom.validation.expectations import LEVELS, Level, expectation_classes
from include.headroom.validation.suites import (
    BATCH_FRESH,
    BATCH_NOT_EMPTY,
    COLUMN_KINDS,
    COLUMNS,
    GAP_RATIO,
    MAX_GAP,
    MONOTONIC,
    ORDERED,
    TS_HAS_ZONE,
    UNIQUE_KEY,
    WELL_FORMED,
    describe_failures,
    validate_batch,
)


def _validate(config, rows, start=START, end=END, now=NOW):
    return validate_batch(config, rows, "test-batch", start, end, now=now)


def _lost(outcome) -> int:
    return outcome.rows_in - len(outcome.valid) - len(outcome.quarantined)


def test_every_named_expectation_is_a_gx_expectation_with_its_name_and_a_description():
    from great_expectations.util import camel_to_snake

    classes = expectation_classes()
    for name, cls in classes.items():
        assert camel_to_snake(cls.__name__) == name  # the type GX reports in its results
        assert cls.__fields__["description"].default, name
    assert set(classes) | {"expect_well_formed_line"} == set(LEVELS)


def test_clean_batch_passes_whole(config, hour):
    outcome = _validate(config, hour)
    assert (len(outcome.valid), len(outcome.quarantined), outcome.batch_failure) == (len(hour), 0, None)
    assert all(r["success"] for r in outcome.results) and outcome.warnings == []
    suites = {label.split(".")[1] for label, _ in outcome.suite_results}
    assert {"canonical", "batch", "utilization", "latency", "ratio", "throughput", "replicas"} <= suites
    assert outcome.valid["value"].dtype == "float64" and str(outcome.valid["ts"].dt.tz) == "UTC"


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_catalogue_case_has_its_exact_outcome(catalogue, case):
    spec = catalogue.cases[case]
    quarantined = catalogue.outcome.quarantined.set_index("row")
    if spec.expected is None:
        assert not quarantined.index.isin(spec.rows).any()
        assert any(w["expectation"] == spec.warning and (w["service"], w["metric"]) == (spec.service, spec.metric)
                   for w in catalogue.outcome.warnings)
        return
    assert spec.rows, case
    assert quarantined.loc[spec.rows, "failed_expectations"].tolist() == [spec.expected] * len(spec.rows)
    assert not catalogue.outcome.valid.index.isin(spec.rows).any()


def test_catalogue_duplicate_timestamps_keep_the_first_copy(catalogue):
    quarantined = catalogue.outcome.quarantined.set_index("row")
    assert quarantined.loc[catalogue.duplicates, "failed_expectations"].tolist() == [UNIQUE_KEY] * 3
    assert not catalogue.outcome.valid.duplicated(["service", "metric", "ts", "labels"]).any()


def test_catalogue_counter_reset_quarantines_only_the_drop(catalogue):
    quarantined = catalogue.outcome.quarantined
    counters = quarantined[quarantined["metric"] == "requests_total"]
    assert counters["row"].tolist() == [catalogue.counter_reset]
    assert counters["failed_expectations"].tolist() == [MONOTONIC]
    assert counters["raw_value"].tolist() == ["5.0"]


def test_catalogue_loses_nothing_and_quarantines_only_the_bad_rows(catalogue):
    outcome = catalogue.outcome
    expected = {r for c in catalogue.cases.values() for r in c.rows} | set(catalogue.duplicates) | {catalogue.counter_reset}
    assert set(outcome.quarantined["row"]) == expected
    assert outcome.rows_in == len(catalogue.rows) == len(outcome.valid) + len(outcome.quarantined)
    assert sorted([*outcome.valid.index, *outcome.quarantined["row"]]) == list(range(len(catalogue.rows)))
    # the observed value and the row as it arrived are kept
    q = outcome.quarantined.set_index("row")
    row = catalogue.cases["string_in_value"].rows[0]
    assert q.loc[row, "raw_value"] == "'n/a'" and json.loads(q.loc[row, "raw_record"])["value"] == "n/a"


def test_quarantined_rows_fit_the_quarantine_table(catalogue):
    from include.headroom.metrics.schema import table

    conformed = table("quarantine").conform(catalogue.outcome.quarantined)
    assert len(conformed) == len(catalogue.outcome.quarantined)
    assert table("metrics").conform(catalogue.outcome.valid).shape[0] == len(catalogue.outcome.valid)


def test_six_hour_gap_warns_and_keeps_every_row(config, fleet):
    rows = fleet.generate("2026-10-31T12:00Z", END).reset_index(drop=True)
    series = rows.index[(rows["service"] == "search-api") & (rows["metric"] == "throughput")]
    ts = rows.loc[series, "ts"]
    hole = series[(ts >= pd.Timestamp("2026-10-31T14:00Z")) & (ts < pd.Timestamp("2026-10-31T20:00Z"))]
    assert len(hole) == 72
    rows = rows.drop(index=hole).reset_index(drop=True)
    outcome = _validate(config, rows, start="2026-10-31T12:00Z")
    assert len(outcome.quarantined) == 0 and len(outcome.valid) == len(rows) and outcome.batch_failure is None
    assert sorted((w["expectation"], w["service"], w["metric"], w["rows"]) for w in outcome.warnings) == [
        (GAP_RATIO, "search-api", "throughput", 72), (MAX_GAP, "search-api", "throughput", 72)]


def test_empty_batch_is_a_batch_failure(config, hour):
    outcome = _validate(config, hour.iloc[0:0])
    assert (outcome.batch_failure, outcome.rows_in, len(outcome.quarantined)) == ("empty batch", 0, 0)
    assert [r["expectation"] for r in outcome.results if not r["success"]] == [BATCH_NOT_EMPTY]


@pytest.mark.parametrize(
    ("change", "failure", "expectation"),
    [
        (lambda f: f.drop(columns=["unit"]), "schema drift: missing columns ['unit']", COLUMNS),
        (lambda f: f.assign(region="eu-west-1"), "schema drift: unknown columns ['region']", COLUMNS),
        (lambda f: f.assign(ts=f["ts"].astype("int64")), "wrong column kinds: ts holds number, expected time", COLUMN_KINDS),
        (lambda f: f.assign(value=f["value"] > 1), "wrong column kinds: value holds bool, expected number", COLUMN_KINDS),
    ],
    ids=["missing_column", "extra_unknown_column", "wrong_dtype_ts", "wrong_dtype_value"],
)
def test_schema_problems_quarantine_the_whole_batch(config, hour, change, failure, expectation):
    rows = change(hour)
    outcome = _validate(config, rows)
    assert outcome.batch_failure == failure
    assert outcome.valid.empty and len(outcome.quarantined) == len(rows) == outcome.rows_in
    assert set(outcome.quarantined["failed_expectations"]) == {expectation}
    record = json.loads(outcome.quarantined["raw_record"].iloc[0])
    assert set(record) == set(rows.columns)  # the row as it arrived, every column, nothing lost


def test_stale_batch_is_quarantined_whole(config, hour):
    outcome = _validate(config, hour, end="2026-11-01T06:00Z", now="2026-11-01T06:05Z")
    assert outcome.batch_failure.startswith("stale batch: newest point 2026-10-31T23:55:00+00:00 is older than 12 steps of 300 s")
    assert len(outcome.quarantined) == len(hour) and outcome.valid.empty
    assert set(outcome.quarantined["failed_expectations"]) == {BATCH_FRESH}


CSV = """ts,service,tier,metric,value,unit,source,labels
2026-10-31T23:00:00+00:00,blog-frontend,basic,throughput,11.5,req/s,files,
2026-11-01T00:05:00+01:00,blog-frontend,basic,throughput,12.5,req/s,files,
2026-10-31T23:10:00,blog-frontend,basic,throughput,13.5,req/s,files,
2026-10-31T18:15:00-05:00,blog-frontend,basic,throughput,14.5,req/s,files,
2026-10-31T23:20:00Z,blog-frontend,basic,throughput,fifteen,req/s,files,
2026-10-31T23:25:00Z,blog-frontend,basic,throughput,16.5,req/s
2026-10-31T23:30:00Z,blog-frontend,basic,"throughput,17.5,req/s,files,

2026-10-31T23:35:00Z,blog-frontend,basic,throughput,,req/s,files,
"""


def test_csv_batch_mixed_timezones_malformed_lines_and_text_values(config):
    from include.headroom.validation.csv_batch import read_csv_batch

    rows = read_csv_batch(io.StringIO(CSV), name="fleet.csv")
    assert len(rows) == 8  # every non-blank data line is a row, well formed or not
    outcome = _validate(config, rows)
    q = outcome.quarantined.set_index("row")
    assert q["failed_expectations"].to_dict() == {
        2: TS_HAS_ZONE,  # no zone: ambiguous
        4: "expect_value_numeric",
        5: WELL_FORMED,  # 7 fields for 8 columns
        6: WELL_FORMED,  # an unclosed quote swallows the line
        7: "expect_value_not_null",
    }
    assert json.loads(q.loc[5, "raw_record"]) == {
        "line": "2026-10-31T23:25:00Z,blog-frontend,basic,throughput,16.5,req/s", "error": "fleet.csv:7: expected 8 fields, got 6"}
    # offsets are converted: +01:00 and -05:00 land on the UTC step grid
    assert [t.isoformat() for t in outcome.valid["ts"]] == [
        "2026-10-31T23:00:00+00:00", "2026-10-31T23:05:00+00:00", "2026-10-31T23:15:00+00:00"]
    assert outcome.valid["value"].tolist() == [11.5, 12.5, 14.5]
    assert _lost(outcome) == 0


def test_failure_message_names_series_expectation_and_rows(config, hour):
    rows = hour.copy()
    rows.loc[rows.index[(rows["service"] == "blog-frontend") & (rows["metric"] == "cpu_utilization")][0], "value"] = 250.0
    message = describe_failures(_validate(config, rows))
    assert "1 of 1296 rows quarantined" in message
    assert "series blog-frontend/cpu_utilization: expect_value_in_unit_range on 1 rows, e.g. 2026-10-31T23:00Z=250.0" in message


def test_warnings_never_quarantine(catalogue):
    levels = {LEVELS[w["expectation"]] for w in catalogue.outcome.warnings}
    assert levels == {Level.WARNING}
    assert ORDERED in {w["expectation"] for w in catalogue.outcome.warnings}


def test_an_expectation_that_cannot_run_is_an_error_not_a_pass():
    from include.headroom.exceptions import DataError
    from include.headroom.validation.expectations import FINITE, expectation
    from include.headroom.validation.suites import ValidationOutcome, _record, _run

    result = _run(pd.DataFrame({"other": [1.0]}), "headroom.test", [expectation(FINITE)]).results[0]
    with pytest.raises(DataError, match=r'batch b: expect_value_finite in suite headroom.test \(unit \*\) could not run: .*"value"'):
        _record(ValidationOutcome("b", 1, pd.DataFrame(), pd.DataFrame()), result, "headroom.test", "*", 1)
