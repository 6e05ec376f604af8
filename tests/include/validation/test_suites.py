"""Validation with Great Expectations: bad rows are quarantined with why, nothing is lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.headroom.validation.suites import (
    BATCH_FRESH,
    IN_INTERVAL,
    IN_UNIT_RANGE,
    KNOWN_SERVICE,
    KNOWN_TIER,
    NOT_NULL,
    UNIQUE_KEY,
    describe_failures,
    validate_batch,
)

START, END, NOW = "2026-10-31T23:00Z", "2026-11-01T00:00Z", "2026-11-01T00:05Z"


@pytest.fixture(scope="module")
def batch(fleet):
    return fleet.generate(START, END).reset_index(drop=True)


def _validate(config, rows, start=START, end=END, now=NOW):
    return validate_batch(config, rows, "test-batch", start, end, now=now)


def _row(batch, metric, offset=0):
    return batch.index[batch["metric"] == metric][offset]


def test_clean_batch_passes_whole(config, batch):
    outcome = _validate(config, batch)
    assert (len(outcome.valid), len(outcome.quarantined)) == (len(batch), 0)
    assert all(r["success"] for r in outcome.results)


@pytest.mark.parametrize(
    ("metric", "field", "bad", "expectation"),
    [
        ("throughput", "value", np.nan, NOT_NULL),
        ("throughput", "value", np.inf, IN_UNIT_RANGE),
        ("throughput", "value", -np.inf, IN_UNIT_RANGE),
        ("response_time", "value", -3.0, IN_UNIT_RANGE),
        ("cpu_utilization", "value", 250.0, IN_UNIT_RANGE),
        ("error_rate", "value", 1.7, IN_UNIT_RANGE),
        ("throughput", "service", "ghost-service", KNOWN_SERVICE),
        ("throughput", "tier", "platinum", KNOWN_TIER),
        ("throughput", "ts", pd.Timestamp("2026-11-01T03:00Z"), IN_INTERVAL),  # in the future
        ("throughput", "ts", pd.Timestamp("2026-10-30T12:00Z"), IN_INTERVAL),  # before the interval
    ],
)
def test_each_bad_row_is_quarantined_with_its_expectation(config, batch, metric, field, bad, expectation):
    rows = batch.copy()
    i = _row(rows, metric)
    rows.loc[i, field] = bad
    outcome = _validate(config, rows)
    assert len(outcome.valid) + len(outcome.quarantined) == len(rows)
    assert outcome.quarantined["row"].tolist() == [i]
    assert outcome.quarantined["failed_expectations"].iloc[0] == expectation
    assert not outcome.valid.index.isin([i]).any()


def test_duplicates_keep_the_first_copy(config, batch):
    rows = pd.concat([batch, batch.iloc[[5, 5, 9]]], ignore_index=True)
    outcome = _validate(config, rows)
    assert len(outcome.quarantined) == 3
    assert set(outcome.quarantined["failed_expectations"]) == {UNIQUE_KEY}
    assert len(outcome.valid) == len(batch)
    assert not outcome.valid.duplicated(["service", "metric", "ts", "labels"]).any()


def test_several_failures_on_one_row_are_all_named(config, batch):
    rows = batch.copy()
    i = _row(rows, "cpu_utilization")
    rows.loc[i, ["value", "service"]] = [300.0, "ghost"]
    outcome = _validate(config, rows)
    assert outcome.quarantined["failed_expectations"].iloc[0] == f"{KNOWN_SERVICE};{IN_UNIT_RANGE}"
    assert outcome.quarantined["raw_value"].iloc[0] == "300.0"


def test_stale_batch_is_quarantined_whole(config, batch):
    outcome = _validate(config, batch, end="2026-11-01T06:00Z", now="2026-11-01T06:05Z")
    assert outcome.batch_failure and "stale batch" in outcome.batch_failure
    assert len(outcome.quarantined) == len(batch) and outcome.valid.empty
    assert set(outcome.quarantined["failed_expectations"]) == {BATCH_FRESH}


def test_empty_batch_is_a_batch_failure(config, batch):
    outcome = _validate(config, batch.iloc[0:0])
    assert outcome.batch_failure == "empty batch"
    assert outcome.rows_in == 0


def test_failure_message_names_series_expectation_and_rows(config, batch):
    rows = batch.copy()
    rows.loc[_row(rows, "cpu_utilization"), "value"] = 250.0
    message = describe_failures(_validate(config, rows))
    assert "1 of 1296 rows quarantined" in message
    assert "series blog-frontend/cpu_utilization: expect_value_in_unit_range on 1 rows, e.g. 2026-10-31T23:00Z=250.0" in message
