"""Shared batches for the validation tests: one hour of the sample fleet, and the bad-input catalogue built on it."""

from __future__ import annotations

import pandas as pd
import pytest
from validation_catalogue import (
    CASES,
    COUNTER,
    DUPLICATED,
    END,
    NOW,
    START,
    Case,
    Catalogue,
)


@pytest.fixture(scope="session")
def hour(fleet):
    """One hour of the whole fleet: 12 points x 9 metrics x 12 services = 1296 rows."""
    return fleet.generate(START, END).reset_index(drop=True)


@pytest.fixture(scope="session")
def catalogue(config, hour):
    """Every row-level bad input of the catalogue in one batch, each in its own series, validated once."""
    from include.headroom.validation.suites import validate_batch

    rows = hour.copy()
    rows["value"] = rows["value"].astype(object)  # so a string can sit in it, as it would from a loose source
    cases = {}
    for case in CASES:
        idx = list(hour.index[(hour["service"] == case.service) & (hour["metric"] == case.metric)])
        case = Case(**case.__dict__)
        case.rows = case.mutate(rows, idx)
        cases[case.name] = case
    service, metric, offsets = DUPLICATED
    idx = list(hour.index[(hour["service"] == service) & (hour["metric"] == metric)])
    copies = rows.loc[[idx[o] for o in offsets]]
    rows = pd.concat([rows, copies], ignore_index=True)
    duplicates = list(range(len(rows) - len(copies), len(rows)))
    service, metric, reset_at = COUNTER
    stamps = hour.loc[hour["service"] == service, "ts"].drop_duplicates().sort_values().to_list()
    counts = [1000.0 + 100 * i for i in range(len(stamps))]
    counts[reset_at:] = [5.0 + 100 * i for i in range(len(stamps) - reset_at)]
    counter = pd.DataFrame({"ts": stamps, "service": service, "tier": "enterprise", "metric": metric, "value": counts,
                            "unit": "count", "source": "sample_fleet", "labels": ""})
    counter["value"] = counter["value"].astype(object)
    first_counter = len(rows)
    rows = pd.concat([rows, counter], ignore_index=True)
    result = Catalogue(rows, cases, duplicates, first_counter + reset_at)
    result.outcome = validate_batch(config, rows, "catalogue", START, END, now=NOW)
    return result
