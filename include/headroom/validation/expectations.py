"""Named Great Expectations, one business rule each, with typed defaults and a description.

The classes subclass GX 1.x expectations, so importing Great Expectations (about 4 s) is
deferred to :func:`expectation_classes`; the names below are cheap constants that the rest
of the product (quarantine rows, results, gates, tests) uses to say which rule a row broke.
"""

from __future__ import annotations

import os
from enum import Enum
from functools import lru_cache
from typing import Any

from include.headroom.exceptions import UnknownNameError


class Level(str, Enum):
    """What breaking a rule does: quarantine the rows, quarantine the whole batch, or only warn."""

    ROW = "row"
    BATCH = "batch"
    WARNING = "warning"


# Row level: the rows that break these go to quarantine, the rest of the batch continues.
NOT_NULL = "expect_value_not_null"
NUMERIC = "expect_value_numeric"
FINITE = "expect_value_finite"
IN_UNIT_RANGE = "expect_value_in_unit_range"
UNIT_FOR_METRIC = "expect_unit_for_metric"
KNOWN_METRIC = "expect_known_metric"
KNOWN_SERVICE = "expect_known_service"
KNOWN_TIER = "expect_known_tier"
CATALOG_TIER = "expect_tier_matches_catalog"
UNIQUE_KEY = "expect_unique_series_key"
TS_VALID = "expect_timestamp_valid"
TS_HAS_ZONE = "expect_timestamp_has_timezone"
IN_INTERVAL = "expect_timestamp_in_interval"
NOT_IN_FUTURE = "expect_timestamp_not_in_future"
ALIGNED = "expect_timestamp_aligned_to_step"
INTEGER = "expect_value_integer"
WITHIN_CATALOG = "expect_replicas_within_catalog"
PLAUSIBLE = "expect_latency_plausible"
NO_SPIKE = "expect_no_spike"
NOT_FLAT = "expect_series_not_flat"
MONOTONIC = "expect_counter_monotonic"
WELL_FORMED = "expect_well_formed_line"  # raised by the CSV loader, never by GX: the line could not be split into fields
# Batch level: the whole batch is quarantined.
BATCH_NOT_EMPTY = "expect_batch_not_empty"
COLUMNS = "expect_batch_columns"
COLUMN_KINDS = "expect_column_kinds"
BATCH_FRESH = "expect_batch_fresh"
# Warnings: recorded in the results and the Data Docs, rows are kept.
ORDERED = "expect_timestamps_in_order"
MAX_GAP = "expect_series_max_gap"
GAP_RATIO = "expect_series_gap_ratio"

LEVELS: dict[str, Level] = {
    **{
        name: Level.ROW
        for name in (
            NOT_NULL,
            NUMERIC,
            FINITE,
            IN_UNIT_RANGE,
            UNIT_FOR_METRIC,
            KNOWN_METRIC,
            KNOWN_SERVICE,
            KNOWN_TIER,
            CATALOG_TIER,
            UNIQUE_KEY,
            TS_VALID,
            TS_HAS_ZONE,
            IN_INTERVAL,
            NOT_IN_FUTURE,
            ALIGNED,
            INTEGER,
            WITHIN_CATALOG,
            PLAUSIBLE,
            NO_SPIKE,
            NOT_FLAT,
            MONOTONIC,
            WELL_FORMED,
        )
    },
    **{name: Level.BATCH for name in (BATCH_NOT_EMPTY, COLUMNS, COLUMN_KINDS, BATCH_FRESH)},
    **{name: Level.WARNING for name in (ORDERED, MAX_GAP, GAP_RATIO)},
}
FLOAT_MAX = 1.7976931348623157e308


@lru_cache(maxsize=1)
def expectation_classes() -> dict[str, type]:
    """The named expectations by name (GX subclasses), built on first use."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    E = gx.expectations

    class ExpectValueNotNull(E.ExpectColumnValuesToNotBeNull):
        column: str = "value_observed"
        description: str = "Every point has a **value** (not null, not NaN)."

    class ExpectValueNumeric(E.ExpectColumnValuesToBeInSet):
        column: str = "value_is_number"
        value_set: list = [True]
        description: str = "A **value** is a number, not text."

    class ExpectValueFinite(E.ExpectColumnValuesToBeBetween):
        column: str = "value"
        min_value: float = -FLOAT_MAX
        max_value: float = FLOAT_MAX
        description: str = "A **value** is finite (not +Inf or -Inf)."

    class ExpectValueInUnitRange(E.ExpectColumnValuesToBeBetween):
        column: str = "value"
        min_value: float = 0.0
        max_value: float | None = None
        description: str = (
            "A value lies in the range its **unit** allows (percent 0-100, ratio 0-1, latency below its ceiling, counts >= 0)."
        )

    class ExpectUnitForMetric(E.ExpectColumnValuesToBeInSet):
        column: str = "unit"
        description: str = "A metric comes in one of the **units** its family allows."

    class ExpectKnownMetric(E.ExpectColumnValuesToBeInSet):
        column: str = "metric"
        description: str = "The **metric** is a canonical name some suite validates."

    class ExpectKnownService(E.ExpectColumnValuesToBeInSet):
        column: str = "service"
        description: str = "The **service** is in the catalog."

    class ExpectKnownTier(E.ExpectColumnValuesToBeInSet):
        column: str = "tier"
        description: str = "The **tier** is one of the five performance tiers."

    class ExpectTierMatchesCatalog(E.ExpectColumnPairValuesToBeEqual):
        column_A: str = "tier"
        column_B: str = "catalog_tier"
        ignore_row_if: str = "either_value_is_missing"
        description: str = "A point's **tier** is the tier the catalog gives its service."

    class ExpectUniqueSeriesKey(E.ExpectColumnValuesToBeUnique):
        column: str = "point_key"  # (service, metric, labels) and ts folded into one number
        description: str = "One point per (service, metric, ts, labels): later copies are quarantined."

    class ExpectTimestampValid(E.ExpectColumnValuesToNotBeNull):
        column: str = "ts_epoch"
        description: str = "A point's **timestamp** can be read as a time."

    class ExpectTimestampHasTimezone(E.ExpectColumnValuesToBeInSet):
        column: str = "ts_has_zone"
        value_set: list = [True]
        description: str = "A text **timestamp** carries its UTC offset (a time without one is ambiguous)."

    class ExpectTimestampInInterval(E.ExpectColumnValuesToBeBetween):
        column: str = "ts_epoch"
        strict_max: bool = True
        description: str = "A point's timestamp lies in the batch's **data interval** [start, end)."

    class ExpectTimestampNotInFuture(E.ExpectColumnValuesToBeBetween):
        column: str = "ts_epoch"
        description: str = "A point's timestamp is not in the **future** (beyond a small clock-skew tolerance)."

    class ExpectTimestampAlignedToStep(E.ExpectColumnValuesToBeBetween):
        column: str = "ts_offset_s"
        min_value: float = 0.0
        max_value: float = 0.0
        description: str = "A timestamp sits on the source's **step** grid (every 5 minutes by default)."

    class ExpectValueInteger(E.ExpectColumnValuesToBeBetween):
        column: str = "value_fraction"
        min_value: float = 0.0
        max_value: float = 0.0
        description: str = "A **replica count** is a whole number."

    class ExpectReplicasWithinCatalog(E.ExpectColumnValuesToBeBetween):
        column: str = "catalog_position"
        min_value: float = 0.0
        max_value: float = 1.0
        description: str = "A **replica count** lies within the catalog's [min, max] widened by the configured margin."

    class ExpectLatencyPlausible(E.ExpectColumnValuesToBeBetween):
        column: str = "plausibility"
        description: str = "A latency series' median is **plausible** for the service (catches milliseconds sent as seconds)."

    class ExpectNoSpike(E.ExpectColumnValuesToBeBetween):
        column: str = "spike_ratio"
        description: str = "A point is not a **spike** of many times its series' median."

    class ExpectSeriesNotFlat(E.ExpectColumnValuesToBeBetween):
        column: str = "flat_run"
        description: str = "A series does not repeat one value for an hour or more (a **stuck exporter**)."

    class ExpectCounterMonotonic(E.ExpectColumnValuesToBeBetween):
        column: str = "counter_step"
        min_value: float = 0.0
        description: str = "A cumulative **counter** never drops; a drop is a reset."

    class ExpectBatchNotEmpty(E.ExpectTableRowCountToBeBetween):
        min_value: int = 1
        description: str = "A batch has at least one row."

    class ExpectBatchColumns(E.ExpectTableColumnsToMatchSet):
        exact_match: bool = True
        description: str = "A batch has exactly the canonical **columns**: none missing, none unknown."

    class ExpectColumnKinds(E.ExpectColumnPairValuesToBeEqual):
        column_A: str = "kind"
        column_B: str = "expected_kind"
        description: str = "Every canonical column holds the **kind** of data its schema says (time, number, text)."

    class ExpectBatchFresh(E.ExpectColumnMaxToBeBetween):
        column: str = "ts_epoch"
        description: str = "A batch's newest point is recent relative to its interval end (not **stale**)."

    class ExpectTimestampsInOrder(E.ExpectColumnValuesToBeBetween):
        column: str = "arrival_step_s"
        min_value: float = 0.0
        severity: Any = "warning"
        description: str = "Within a series, points arrive in time **order** (sorted on write; a warning)."

    class ExpectSeriesMaxGap(E.ExpectColumnValuesToBeBetween):
        column: str = "series_max_gap_s"
        severity: Any = "warning"
        description: str = "A series has no **gap** longer than the tier's maximum (a warning: the rows are kept)."

    class ExpectSeriesGapRatio(E.ExpectColumnValuesToBeBetween):
        column: str = "series_gap_ratio"
        severity: Any = "warning"
        description: str = "A series misses at most the tier's share of its steps (a warning: the rows are kept)."

    return {
        NOT_NULL: ExpectValueNotNull,
        NUMERIC: ExpectValueNumeric,
        FINITE: ExpectValueFinite,
        IN_UNIT_RANGE: ExpectValueInUnitRange,
        UNIT_FOR_METRIC: ExpectUnitForMetric,
        KNOWN_METRIC: ExpectKnownMetric,
        KNOWN_SERVICE: ExpectKnownService,
        KNOWN_TIER: ExpectKnownTier,
        CATALOG_TIER: ExpectTierMatchesCatalog,
        UNIQUE_KEY: ExpectUniqueSeriesKey,
        TS_VALID: ExpectTimestampValid,
        TS_HAS_ZONE: ExpectTimestampHasTimezone,
        IN_INTERVAL: ExpectTimestampInInterval,
        NOT_IN_FUTURE: ExpectTimestampNotInFuture,
        ALIGNED: ExpectTimestampAlignedToStep,
        INTEGER: ExpectValueInteger,
        WITHIN_CATALOG: ExpectReplicasWithinCatalog,
        PLAUSIBLE: ExpectLatencyPlausible,
        NO_SPIKE: ExpectNoSpike,
        NOT_FLAT: ExpectSeriesNotFlat,
        MONOTONIC: ExpectCounterMonotonic,
        BATCH_NOT_EMPTY: ExpectBatchNotEmpty,
        COLUMNS: ExpectBatchColumns,
        COLUMN_KINDS: ExpectColumnKinds,
        BATCH_FRESH: ExpectBatchFresh,
        ORDERED: ExpectTimestampsInOrder,
        MAX_GAP: ExpectSeriesMaxGap,
        GAP_RATIO: ExpectSeriesGapRatio,
    }


def expectation(name: str, **params: Any) -> Any:
    """An instance of the named expectation ``name`` with ``params`` over its defaults."""
    classes = expectation_classes()
    try:
        return classes[name](**params)
    except KeyError:
        raise UnknownNameError(f"unknown expectation {name!r}; known: {sorted(classes)}") from None
