"""Great Expectations suites for metric batches, run at task time; failing rows are quarantined, never dropped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

NOT_NULL = "expect_value_not_null"
IN_UNIT_RANGE = "expect_value_in_unit_range"
KNOWN_SERVICE = "expect_known_service"
KNOWN_TIER = "expect_known_tier"
UNIQUE_KEY = "expect_unique_series_key"
IN_INTERVAL = "expect_timestamp_in_interval"
BATCH_NOT_EMPTY = "expect_batch_not_empty"
BATCH_FRESH = "expect_batch_fresh"


@lru_cache(maxsize=1)
def _expectation_classes() -> dict[str, type]:
    """Named expectations (GX subclasses with typed defaults), built on first use so importing this module stays cheap."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    class ExpectValueNotNull(gx.expectations.ExpectColumnValuesToNotBeNull):
        column: str = "value"
        description: str = "Every point has a **value**."

    class ExpectValueInUnitRange(gx.expectations.ExpectColumnValuesToBeBetween):
        column: str = "value"
        min_value: float = 0.0
        max_value: float | None = None
        description: str = "A value lies in the range its **unit** allows (percent 0-100, ratio 0-1, ...)."

    class ExpectKnownService(gx.expectations.ExpectColumnValuesToBeInSet):
        column: str = "service"
        description: str = "The **service** is in the catalog."

    class ExpectKnownTier(gx.expectations.ExpectColumnValuesToBeInSet):
        column: str = "tier"
        description: str = "The **tier** is one of the five performance tiers."

    class ExpectUniqueSeriesKey(gx.expectations.ExpectCompoundColumnsToBeUnique):
        column_list: list = ["service", "metric", "ts", "labels"]  # noqa: RUF012 - pydantic field
        description: str = "One point per (service, metric, ts, labels)."

    class ExpectTimestampInInterval(gx.expectations.ExpectColumnValuesToBeBetween):
        column: str = "ts_epoch"
        description: str = "A point's timestamp lies in the batch's data interval and not in the future."

    return {
        NOT_NULL: ExpectValueNotNull, IN_UNIT_RANGE: ExpectValueInUnitRange, KNOWN_SERVICE: ExpectKnownService,
        KNOWN_TIER: ExpectKnownTier, UNIQUE_KEY: ExpectUniqueSeriesKey, IN_INTERVAL: ExpectTimestampInInterval,
    }


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("headroom")
    return source.add_dataframe_asset("metric_batch").add_batch_definition_whole_dataframe("whole_batch")


@dataclass
class ValidationOutcome:
    """What validating one batch decided: the rows that pass, the rows quarantined (with why), and GX's statistics."""

    batch_id: str
    rows_in: int
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    results: list[dict[str, Any]] = field(default_factory=list)
    batch_failure: str | None = None

    @property
    def failure_ratio(self) -> float:
        return len(self.quarantined) / self.rows_in if self.rows_in else 0.0

    def summary(self) -> str:
        failed = [r for r in self.results if not r["success"]]
        return json.dumps({"batch_failure": self.batch_failure, "failed": failed})


def _run(df: pd.DataFrame, expectations: list[Any]) -> list[Any]:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="headroom_metrics", expectations=expectations)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    return list(batch.validate(suite, result_format={"result_format": "COMPLETE"}).results)


def _suite_for(config: HeadroomConfig, unit: str, start_epoch: float, end_epoch: float) -> list[Any]:
    cls = _expectation_classes()
    services = [s.name for s in config.services]
    tiers = [t.value for t in config.tiers]
    pipe = config.pipeline
    suite = [
        cls[NOT_NULL](),
        cls[KNOWN_SERVICE](value_set=services),
        cls[KNOWN_TIER](value_set=tiers),
        cls[IN_INTERVAL](min_value=start_epoch, max_value=end_epoch),
    ]
    if unit in pipe.unit_ranges:
        low, high = pipe.unit_ranges[unit]
        suite.append(cls[IN_UNIT_RANGE](min_value=low, max_value=high))
    elif unit in pipe.non_negative_units:
        suite.append(cls[IN_UNIT_RANGE](min_value=0.0))
    return suite


def validate_batch(
    config: HeadroomConfig,
    batch: pd.DataFrame,
    batch_id: str,
    interval_start: Any,
    interval_end: Any,
    now: Any = None,
) -> ValidationOutcome:
    """Validate the canonical rows of one batch.

    Row-level failures quarantine those rows; a batch-level failure (empty, stale)
    quarantines the whole batch. ``rows_in == len(valid) + len(quarantined)`` always.
    """
    import numpy as np
    import pandas as pd

    now_ts = utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    df = batch.reset_index(drop=True)
    start, end = utc(interval_start), utc(interval_end)
    end_epoch = min(end, now_ts + pd.Timedelta(seconds=config.pipeline.future_tolerance_s)).timestamp()
    failures: dict[int, list[str]] = {}
    results: list[dict[str, Any]] = []

    if df.empty:
        return ValidationOutcome(batch_id, 0, df, df, [{"expectation": BATCH_NOT_EMPTY, "success": False, "unexpected": 0, "rows": 0}], "empty batch")

    frame = df.copy()
    frame["value"] = frame["value"].replace([np.inf, -np.inf], np.nan).where(lambda v: v.notna(), None)
    frame["ts_epoch"] = pd.to_datetime(frame["ts"], utc=True).map(lambda t: t.timestamp())
    for unit, part in frame.groupby("unit", sort=True):
        for result in _run(part, _suite_for(config, str(unit), start.timestamp(), end_epoch)):
            name = result.expectation_config.type
            bad = [int(i) for i in result.result.get("unexpected_index_list") or []]
            for i in bad:
                failures.setdefault(i, []).append(name)
            results.append({"expectation": name, "unit": str(unit), "success": bool(result.success), "unexpected": len(bad), "rows": len(part)})
    # Infinite values were turned to nulls for GX; say what they were.
    inf_rows = np.flatnonzero(np.isinf(pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float)))
    for i in inf_rows:
        failures[int(i)] = [IN_UNIT_RANGE if f == NOT_NULL else f for f in failures.get(int(i), [NOT_NULL])]
    # Duplicate keys: GX flags every copy; the first stays valid, later copies are quarantined.
    key_result = _run(frame, [_expectation_classes()[UNIQUE_KEY]()])[0]
    dupes = frame.duplicated(["service", "metric", "ts", "labels"], keep="first")
    for i in np.flatnonzero(dupes.to_numpy()):
        failures.setdefault(int(i), []).append(UNIQUE_KEY)
    results.append({"expectation": UNIQUE_KEY, "unit": "*", "success": bool(key_result.success), "unexpected": int(dupes.sum()), "rows": len(frame)})

    newest = pd.to_datetime(df["ts"], utc=True).max()
    max_age = pd.Timedelta(seconds=config.pipeline.max_age_s)
    batch_failure = None
    if newest < end - max_age:
        batch_failure = f"stale batch: newest point {newest.isoformat()} is older than {max_age} before the interval end {end.isoformat()}"
        results.append({"expectation": BATCH_FRESH, "unit": "*", "success": False, "unexpected": len(df), "rows": len(df)})
        for i in range(len(df)):
            failures.setdefault(i, []).append(BATCH_FRESH)

    bad_index = sorted(failures)
    quarantined = df.iloc[bad_index].copy()
    quarantined["row"] = bad_index
    quarantined["raw_value"] = [repr(v) for v in df["value"].iloc[bad_index]]
    quarantined["failed_expectations"] = [";".join(sorted(set(failures[i]))) for i in bad_index]
    quarantined["quarantined_at"] = now_ts
    quarantined["value"] = pd.to_numeric(quarantined["value"], errors="coerce")
    valid = df.drop(index=bad_index)
    return ValidationOutcome(batch_id, len(df), valid, quarantined, results, batch_failure)


def describe_failures(outcome: ValidationOutcome, limit: int = 3) -> str:
    """A message naming the failing series, expectations and a few offending rows."""
    q = outcome.quarantined
    lines = [f"batch {outcome.batch_id}: {len(q)} of {outcome.rows_in} rows quarantined ({outcome.failure_ratio:.1%})"]
    if outcome.batch_failure:
        lines.append(outcome.batch_failure)
    for (service, metric, failed), rows in q.groupby(["service", "metric", "failed_expectations"], sort=True):
        sample = ", ".join(f"{r.ts:%Y-%m-%dT%H:%M}Z={r.raw_value}" for r in rows.head(limit).itertuples())
        lines.append(f"  series {service}/{metric}: {failed} on {len(rows)} rows, e.g. {sample}")
    return "\n".join(lines)
