"""Great Expectations suites for metric batches, run at task time; failing rows are quarantined, never dropped.

One suite checks what every row needs (a numeric, finite value; a known service, tier and
metric; a timestamp with a zone, on the step grid, inside the data interval and not in the
future; one point per key); one suite per metric family (``validation.yaml``) checks units,
ranges and the family's own rules (integer replicas within the catalog, plausible latency,
spikes, stuck exporters, counter resets); batch-level expectations (schema, not empty, fresh)
quarantine the whole batch. ``rows_in == len(valid) + len(quarantined)`` always holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable

from include.headroom.exceptions import DataError
from include.headroom.metrics.schema import CANONICAL_COLUMNS
from include.headroom.timeutil import utc
from include.headroom.validation.expectations import (
    ALIGNED,
    BATCH_FRESH,
    BATCH_NOT_EMPTY,
    CATALOG_TIER,
    COLUMN_KINDS,
    COLUMNS,
    FINITE,
    GAP_RATIO,
    IN_INTERVAL,
    IN_UNIT_RANGE,
    INTEGER,
    KNOWN_METRIC,
    KNOWN_SERVICE,
    KNOWN_TIER,
    LEVELS,
    MAX_GAP,
    MONOTONIC,
    NO_SPIKE,
    NOT_FLAT,
    NOT_IN_FUTURE,
    NOT_NULL,
    NUMERIC,
    ORDERED,
    PLAUSIBLE,
    TS_HAS_ZONE,
    TS_VALID,
    UNIQUE_KEY,
    UNIT_FOR_METRIC,
    WELL_FORMED,
    WITHIN_CATALOG,
    Level,
    expectation,
)

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.validation.settings import MetricFamily

__all__ = [
    "ALIGNED",
    "BATCH_FRESH",
    "BATCH_NOT_EMPTY",
    "CATALOG_TIER",
    "COLUMNS",
    "COLUMN_KINDS",
    "FINITE",
    "GAP_RATIO",
    "INTEGER",
    "IN_INTERVAL",
    "IN_UNIT_RANGE",
    "KNOWN_METRIC",
    "KNOWN_SERVICE",
    "KNOWN_TIER",
    "MAX_GAP",
    "MONOTONIC",
    "NOT_FLAT",
    "NOT_IN_FUTURE",
    "NOT_NULL",
    "NO_SPIKE",
    "NUMERIC",
    "ORDERED",
    "PLAUSIBLE",
    "TS_HAS_ZONE",
    "TS_VALID",
    "UNIQUE_KEY",
    "UNIT_FOR_METRIC",
    "WELL_FORMED",
    "WITHIN_CATALOG",
    "ValidationOutcome",
    "describe_failures",
    "validate_batch",
]

SERIES = ["service", "metric", "labels"]
META_COLUMNS = ("batch_id", "parse_error", "raw_line")  # carried along, not part of the canonical schema
CANONICAL_SUITE = "headroom.canonical"
BATCH_SUITE = "headroom.batch"
# The columns each suite's expectations read: GX fingerprints every frame it is given, so it gets only these.
CANONICAL_SUITE_COLUMNS = [
    "value_observed",
    "value_is_number",
    "value",
    "metric",
    "service",
    "tier",
    "catalog_tier",
    "ts_epoch",
    "ts_has_zone",
    "ts_offset_s",
    "point_key",
    "arrival_step_s",
    "series_max_gap_vs_limit",
    "series_gap_ratio_vs_limit",
]
FAMILY_SUITE_COLUMNS = [
    "unit",
    "value_finite",
    "value_fraction",
    "catalog_position",
    "plausibility",
    "spike_ratio",
    "flat_run",
    "counter_step",
]
EXPECTED_KIND = {col: {"timestamp": "time", "float64": "number"}.get(kind, "text") for col, kind in CANONICAL_COLUMNS.items()}


@lru_cache(maxsize=1)
def _gx() -> tuple[Any, Any]:
    """One ephemeral GX context per process, with a pandas data source whose batches are whole DataFrames."""
    from include.headroom.validation.expectations import expectation_classes

    expectation_classes()  # sets up GX (analytics off) before the context exists
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("headroom")
    return context, source.add_dataframe_asset("metric_batch").add_batch_definition_whole_dataframe("whole_batch")


def gx_context() -> Any:
    """The process' ephemeral GX data context (shared by every validation and the Data Docs)."""
    return _gx()[0]


@dataclass
class ValidationOutcome:
    """What validating one batch decided: the rows that pass, the rows quarantined (with why), and GX's statistics.

    :param results: one dict per expectation run (suite, unit, level, success, unexpected and total rows).
    :param warnings: per series, the warning-level expectations it broke (its rows are kept).
    :param suite_results: GX's own validation results, for Data Docs.
    """

    batch_id: str
    rows_in: int
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    results: list[dict[str, Any]] = field(default_factory=list)
    batch_failure: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    suite_results: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def failure_ratio(self) -> float:
        return len(self.quarantined) / self.rows_in if self.rows_in else 0.0

    def all_rows(self) -> pd.DataFrame:
        import pandas as pd

        cols = [c for c in ("service", "metric") if c in self.valid.columns or c in self.quarantined.columns]
        return pd.concat([self.valid.reindex(columns=cols), self.quarantined.reindex(columns=cols)], ignore_index=True)

    def summary(self) -> str:
        failed = [r for r in self.results if not r["success"]]
        return json.dumps({"batch_failure": self.batch_failure, "failed": failed, "warnings": self.warnings}, default=str)


# -- preparing the frame GX looks at ---------------------------------------------------------------


def _kind(col: pd.Series) -> str:
    """What a column holds, in the schema's words: time, number, text (or bool)."""
    from pandas.api import types

    if types.is_bool_dtype(col):
        return "bool"
    if types.is_datetime64_any_dtype(col):
        return "time"
    if types.is_numeric_dtype(col):
        return "number"
    return "text"


def _column_kinds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per canonical column: the kind it holds and the kind expected (text may hold numbers and times)."""
    import pandas as pd

    rows = []
    for col, expected in EXPECTED_KIND.items():
        kind = _kind(df[col])
        if kind == "text" and expected in ("time", "number"):
            kind = expected  # text is parsed row by row; a row that does not parse is quarantined on its own
        rows.append({"column": col, "kind": kind, "expected_kind": expected})
    return pd.DataFrame(rows)


def _parse_ts(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Epoch seconds of each timestamp (NaN when unreadable) and whether it carried a zone."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    if types.is_datetime64_any_dtype(col):
        ts = pd.to_datetime(col, utc=True)
        has_zone = pd.Series(getattr(col.dtype, "tz", None) is not None, index=col.index)
    else:
        epochs, zones = [], []
        for v in col:
            try:
                t = pd.Timestamp(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else pd.NaT
            except (ValueError, TypeError):
                t = pd.NaT
            zones.append(t is pd.NaT or t.tzinfo is not None)
            epochs.append(pd.NaT if t is pd.NaT else (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")))
        ts = pd.to_datetime(pd.Series(epochs, index=col.index, dtype=object), utc=True)
        has_zone = pd.Series(zones, index=col.index)
    epoch = (ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return epoch.astype(float), has_zone.astype(bool)


def _prepare(config: HeadroomConfig, df: pd.DataFrame) -> pd.DataFrame:
    """The batch plus the derived columns the named expectations look at (same index as ``df``)."""
    import numpy as np
    import pandas as pd

    rules = config.pipeline.validation
    catalog = {s.name: s for s in config.services}
    f = pd.DataFrame(index=df.index)
    for col in ("service", "tier", "metric", "unit", "source", "labels"):
        f[col] = df[col].astype(object).where(df[col].notna(), None)
    f["labels"] = f["labels"].fillna("")
    raw = df["value"]
    number = pd.to_numeric(raw, errors="coerce").astype(float)
    f["value_is_number"] = raw.isna() | number.notna()
    f["value_observed"] = number.where(number.notna() | raw.isna(), 0.0)  # text counts as present: NUMERIC names it
    f["value"] = number
    f["value_finite"] = number.where(np.isfinite(number))
    f["ts_epoch"], f["ts_has_zone"] = _parse_ts(df["ts"])
    f["ts"] = pd.to_datetime(f["ts_epoch"], unit="s", utc=True)
    f["ts_offset_s"] = f["ts_epoch"] % rules.step_s
    f["catalog_tier"] = f["service"].map({name: svc.tier.value for name, svc in catalog.items()})
    f["family"] = f["metric"].map({m: fam.name for fam in rules.families.values() for m in fam.metrics})

    # Per-series figures, computed in time order on rows whose time and value are usable.
    f["sid"] = pd.factorize(_series_key(f))[0]
    f["point_key"] = (f["sid"] * 10_000_000_000 + f["ts_epoch"]).where(f["ts_epoch"].notna())
    f["arrival_step_s"] = f.groupby("sid", sort=False)["ts_epoch"].diff()
    usable = f.loc[f["ts_epoch"].notna() & f["value_finite"].notna(), ["sid", "ts_epoch", "value_finite", "family", "unit"]]
    usable = usable.sort_values(["sid", "ts_epoch"], kind="stable")
    group = usable.groupby("sid", sort=False)["value_finite"]
    median = group.transform("median")
    f["spike_ratio"] = (usable["value_finite"] / median.where(median > 0)).reindex(f.index)
    prev = group.shift()
    f["counter_step"] = (usable["value_finite"] - prev).reindex(f.index)
    run_id = (~(usable["sid"].eq(usable["sid"].shift()) & usable["value_finite"].eq(prev))).cumsum()
    run_len = run_id.map(run_id.value_counts()).astype(float)
    unit_low, unit_high = _unit_bounds(rules, usable)
    at_bound = usable["value_finite"].eq(unit_low) | usable["value_finite"].eq(unit_high)
    f["flat_run"] = run_len.where(~at_bound).reindex(f.index)  # saturated at a bound is real, not stuck

    unique_ts = usable.drop_duplicates(["sid", "ts_epoch"])
    step = unique_ts.groupby("sid", sort=False)["ts_epoch"].diff()
    per_series = pd.DataFrame(
        {
            "max_gap": step.groupby(unique_ts["sid"]).max(),
            "points": unique_ts.groupby("sid")["ts_epoch"].size(),
            "span": unique_ts.groupby("sid")["ts_epoch"].max() - unique_ts.groupby("sid")["ts_epoch"].min(),
        }
    )
    per_series["max_gap"] = per_series["max_gap"].fillna(0.0)
    per_series["gap_ratio"] = 1 - per_series["points"] / (per_series["span"] / rules.step_s + 1)
    tier_gap = f["tier"].map({t.value: rules.max_gap_s.for_tier(t) for t in config.tiers}).fillna(rules.max_gap_s.default)
    tier_ratio = f["tier"].map({t.value: rules.max_gap_ratio.for_tier(t) for t in config.tiers}).fillna(rules.max_gap_ratio.default)
    f["series_max_gap_s"] = f["sid"].map(per_series["max_gap"])
    f["series_max_gap_vs_limit"] = f["series_max_gap_s"] / tier_gap
    f["series_gap_ratio"] = f["sid"].map(per_series["gap_ratio"]).clip(lower=0.0)
    f["series_gap_ratio_vs_limit"] = (f["series_gap_ratio"] / tier_ratio.where(tier_ratio > 0)).where(f["series_gap_ratio"] > 0, 0.0)

    # Latency plausibility: the series' median (in ms) over the service's catalog base latency.
    base = f["service"].map({name: svc.base_latency_ms for name, svc in catalog.items()}).astype(float)
    ms = f["value_finite"] * f["unit"].map({"s": 1000.0}).fillna(1.0)
    series_median_ms = ms.groupby(f["sid"]).transform("median")
    f["plausibility"] = series_median_ms / base

    # Replicas: where the count lies between the catalog's [min, max] widened by the margin (0..1 inside).
    lows = f["service"].map({name: svc.min_replicas for name, svc in catalog.items()}).astype(float)
    highs = f["service"].map({name: svc.max_replicas for name, svc in catalog.items()}).astype(float)
    margin = {fam.name: fam.catalog_margin for fam in rules.families.values() if fam.catalog_margin is not None}
    m = f["family"].map(margin).astype(float)
    low, high = np.floor(lows * (1 - m)), np.ceil(highs * (1 + m))
    f["catalog_position"] = (f["value_finite"] - low) / (high - low).where(high > low)
    f["value_fraction"] = (f["value_finite"] - np.round(f["value_finite"])).abs()
    return f


def _series_key(frame: pd.DataFrame) -> pd.Series:
    return frame["service"].astype(str) + "|" + frame["metric"].astype(str) + "|" + frame["labels"].astype(str)


def _unit_bounds(rules: Any, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    import numpy as np

    key = frame["family"].astype(str) + "|" + frame["unit"].astype(str)
    ranges = {f"{fam.name}|{unit}": rng for fam in rules.families.values() for unit, rng in fam.units.items()}
    low = key.map({k: lo for k, (lo, _) in ranges.items()}).astype(float)
    high = key.map({k: np.nan if hi is None else hi for k, (_, hi) in ranges.items()}).astype(float)
    return low, high


# -- suites ---------------------------------------------------------------------------------------


def canonical_suite(config: HeadroomConfig, start_epoch: float, end_epoch: float, now_epoch: float) -> list[Any]:
    """What every row needs, whatever its metric."""
    rules = config.pipeline.validation
    metrics = sorted({m for fam in rules.families.values() for m in fam.metrics})
    return [
        expectation(NOT_NULL),
        expectation(NUMERIC),
        expectation(FINITE),
        expectation(KNOWN_METRIC, value_set=metrics),
        expectation(KNOWN_SERVICE, value_set=[s.name for s in config.services]),
        expectation(KNOWN_TIER, value_set=[t.value for t in config.tiers]),
        expectation(CATALOG_TIER),
        expectation(TS_VALID),
        expectation(TS_HAS_ZONE),
        expectation(IN_INTERVAL, min_value=start_epoch, max_value=end_epoch),
        expectation(NOT_IN_FUTURE, max_value=now_epoch + rules.future_tolerance_s),
        expectation(ALIGNED),
        expectation(UNIQUE_KEY),
        expectation(ORDERED),
        expectation(MAX_GAP, max_value=1.0, column="series_max_gap_vs_limit"),
        expectation(GAP_RATIO, max_value=1.0, column="series_gap_ratio_vs_limit"),
    ]


def family_suite(family: MetricFamily, unit: str) -> list[Any]:
    """A metric family's rules for rows in ``unit``: a unit the family does not allow fails every row."""
    if unit not in family.units:
        return [expectation(UNIT_FOR_METRIC, value_set=sorted(family.units))]
    low, high = family.units[unit]
    suite = [expectation(IN_UNIT_RANGE, min_value=low, max_value=high, column="value_finite")]
    if family.integer:
        suite.append(expectation(INTEGER))
    if family.catalog_margin is not None:
        suite.append(expectation(WITHIN_CATALOG))
    if family.plausible_ratio is not None:
        suite.append(expectation(PLAUSIBLE, min_value=family.plausible_ratio[0], max_value=family.plausible_ratio[1]))
    if family.spike_factor is not None:
        suite.append(expectation(NO_SPIKE, max_value=family.spike_factor))
    if family.flatline_points is not None:
        suite.append(expectation(NOT_FLAT, max_value=family.flatline_points - 1))
    if family.monotonic:
        suite.append(expectation(MONOTONIC))
    return suite


def _run(df: pd.DataFrame, suite_name: str, expectations: list[Any]) -> Any:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    batch = _gx()[1].get_batch(batch_parameters={"dataframe": df})
    return batch.validate(suite, result_format={"result_format": "COMPLETE"})


def _name(result: Any) -> str:
    return str(result.expectation_config.type)


def _unexpected(result: Any) -> list[int]:
    return [int(i) for i in (result.result or {}).get("unexpected_index_list") or []]


# -- validating a batch ---------------------------------------------------------------------------


def validate_batch(
    config: HeadroomConfig,
    batch: pd.DataFrame,
    batch_id: str,
    interval_start: pd.Timestamp,
    interval_end: pd.Timestamp,
    now: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Validate the rows of one batch (canonical columns, plus ``batch_id`` and the CSV loader's columns).

    Row-level failures quarantine those rows; a batch-level failure (empty, schema drift, wrong
    kinds, stale) quarantines the whole batch; warnings keep the rows. Nothing is dropped:
    ``rows_in == len(valid) + len(quarantined)``.
    """
    import pandas as pd

    now_ts = utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    start, end = utc(interval_start), utc(interval_end)
    df = _with_catalog_tier(config, batch.reset_index(drop=True))
    df, zoned = _with_zone_policy(df, config.pipeline.validation.naive_timestamps)
    outcome = ValidationOutcome(batch_id, len(df), df.iloc[0:0], df.iloc[0:0])
    outcome.warnings.extend(zoned)
    failures: dict[int, set[str]] = {}

    malformed = df["parse_error"].fillna("").astype(str).ne("") if "parse_error" in df.columns else pd.Series(False, index=df.index)
    for i in df.index[malformed]:
        failures[int(i)] = {WELL_FORMED}
    data = df[[c for c in df.columns if c not in META_COLUMNS]]

    # Batch level: not empty, exactly the canonical columns, each of the right kind.
    batch_result = _run(data, BATCH_SUITE, [expectation(BATCH_NOT_EMPTY), expectation(COLUMNS, column_set=list(CANONICAL_COLUMNS))])
    outcome.suite_results.append((BATCH_SUITE, batch_result))
    problems = []
    for r in batch_result.results:
        _record(outcome, r, BATCH_SUITE, "*", len(data))
        if not r.success:
            problems.append(r)
    if not problems:
        kinds = _column_kinds(data)
        kind_result = _run(kinds, BATCH_SUITE + ".kinds", [expectation(COLUMN_KINDS)])
        outcome.suite_results.append((BATCH_SUITE + ".kinds", kind_result))
        for r in kind_result.results:
            _record(outcome, r, BATCH_SUITE, "*", len(data))
            if not r.success:
                bad = kinds.iloc[_unexpected(r)]
                outcome.batch_failure = "wrong column kinds: " + ", ".join(
                    f"{c.column} holds {c.kind}, expected {c.expected_kind}" for c in bad.itertuples()
                )
                return _finish(outcome, df, {i: {COLUMN_KINDS} for i in df.index}, now_ts)
    else:
        names = {_name(r) for r in problems}
        if BATCH_NOT_EMPTY in names:
            outcome.batch_failure = "empty batch" if not len(df) else f"no usable rows: all {len(df)} lines are malformed"
        if COLUMNS in names:
            missing = sorted(set(CANONICAL_COLUMNS) - set(data.columns))
            extra = sorted(set(data.columns) - set(CANONICAL_COLUMNS))
            drift = "; ".join(
                p for p in (f"missing columns {missing}" if missing else "", f"unknown columns {extra}" if extra else "") if p
            )
            outcome.batch_failure = f"schema drift: {drift}" if not outcome.batch_failure else outcome.batch_failure
        return _finish(outcome, df, {i: names for i in df.index}, now_ts)

    if malformed.all():
        outcome.batch_failure = f"no usable rows: all {len(df)} lines are malformed"
        return _finish(outcome, df, failures, now_ts)
    frame = _prepare(config, data[~malformed])
    results = _run(
        frame[CANONICAL_SUITE_COLUMNS], CANONICAL_SUITE, canonical_suite(config, start.timestamp(), end.timestamp(), now_ts.timestamp())
    )
    outcome.suite_results.append((CANONICAL_SUITE, results))
    for r in results.results:
        name = _name(r)
        bad = _unexpected(r)
        if name == UNIQUE_KEY:  # GX flags every copy; the first stays valid, later copies are quarantined
            bad = [int(i) for i in frame.index[frame["point_key"].notna() & frame.duplicated("point_key", keep="first")]]
        _record(outcome, r, CANONICAL_SUITE, "*", len(frame), len(bad))
        _apply(outcome, frame, name, bad, failures)

    for (family_name, unit), part in frame.groupby(["family", "unit"], sort=True, dropna=True):
        family = config.pipeline.validation.families[str(family_name)]
        suite_name = f"headroom.{family_name}"
        result = _run(part[FAMILY_SUITE_COLUMNS], suite_name, family_suite(family, str(unit)))
        outcome.suite_results.append((f"{suite_name}.{unit}", result))
        for r in result.results:
            _record(outcome, r, suite_name, str(unit), len(part))
            _apply(outcome, part, _name(r), _unexpected(r), failures)

    # Batch freshness: the newest readable point must be recent relative to the interval end.
    rules = config.pipeline.validation
    oldest_allowed = end.timestamp() - rules.batch_max_age_steps * rules.step_s
    fresh = _run(frame[["ts_epoch"]], BATCH_SUITE, [expectation(BATCH_FRESH, min_value=oldest_allowed)])
    outcome.suite_results.append((BATCH_SUITE + ".fresh", fresh))
    for r in fresh.results:
        _record(outcome, r, BATCH_SUITE, "*", len(frame))
        if not r.success:
            newest = pd.to_datetime(frame["ts_epoch"].max(), unit="s", utc=True)
            outcome.batch_failure = (
                f"stale batch: newest point {newest.isoformat()} is older than "
                f"{rules.batch_max_age_steps} steps of {rules.step_s} s before the interval end {end.isoformat()}"
            )
            return _finish(outcome, df, {i: {BATCH_FRESH} for i in df.index}, now_ts)
    return _finish(outcome, df, failures, now_ts, frame)


def _with_catalog_tier(config: HeadroomConfig, df: pd.DataFrame) -> pd.DataFrame:
    """Rows without a tier get their service's tier from the catalog *now* (not at ingest): a catalog fix re-admits them."""
    if "tier" not in df.columns or "service" not in df.columns or df.empty:
        return df
    tier = df["tier"].astype(object)
    empty = tier.isna() | tier.astype(str).str.strip().eq("")
    if not empty.any():
        return df
    catalog = {s.name: s.tier.value for s in config.services}
    out = df.copy()
    out.loc[empty, "tier"] = df.loc[empty, "service"].map(catalog).fillna("")
    return out


def naive_rows(col: pd.Series) -> pd.Series:
    """Which timestamps of ``col`` were written without a zone (a naive datetime column: all of them)."""
    import pandas as pd
    from pandas.api import types

    if types.is_datetime64_any_dtype(col):
        return pd.Series(getattr(col.dtype, "tz", None) is None, index=col.index)

    def naive(v: Any) -> bool:
        if v is None or (isinstance(v, float) and v != v):
            return False
        try:
            return pd.Timestamp(v).tzinfo is None
        except (ValueError, TypeError):
            return False

    return col.map(naive).astype(bool)


def _with_zone_policy(df: pd.DataFrame, policy: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Naive timestamps read in the configured zone (with a warning per series), or left for ``TS_HAS_ZONE`` to refuse."""
    import pandas as pd

    if policy == "quarantine" or "ts" not in df.columns or df.empty:
        return df, []
    naive = naive_rows(df["ts"])
    if not naive.any():
        return df, []
    out = df.copy()
    out["ts"] = out["ts"].astype(object)
    # A wall-clock time the zone skips (spring forward) or repeats (fall back) cannot be placed: it stays unreadable.
    local = pd.to_datetime(out.loc[naive, "ts"].astype(str), errors="coerce", format="ISO8601")
    placed = local.dt.tz_localize(policy, ambiguous="NaT", nonexistent="NaT")
    out.loc[naive, "ts"] = [t.isoformat() if t is not pd.NaT else "unplaceable in " + policy for t in placed]
    warnings = []
    keys = [c for c in SERIES if c in out.columns]
    for key, part in out.loc[naive].groupby(keys, sort=True, dropna=False):
        service, metric, labels = (key if isinstance(key, tuple) else (key,)) + ("",) * (3 - len(keys))
        warnings.append(
            {
                "expectation": TS_HAS_ZONE,
                "service": service,
                "metric": metric,
                "labels": labels,
                "rows": len(part),
                "note": f"written without a zone: read as {policy} (validation.yaml naive_timestamps)",
            }
        )
    return out, warnings


def _record(outcome: ValidationOutcome, r: Any, suite: str, unit: str, rows: int, unexpected: int | None = None) -> None:
    """Keep one expectation's result; an expectation that could not run at all is an error, never a silent pass."""
    info = getattr(r, "exception_info", None) or {}
    # GX reports either one {raised_exception, exception_message} or one such dict per metric it failed to compute.
    raised = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [str(e.get("exception_message") or "") for e in raised if e.get("raised_exception")]
    if messages:
        raise DataError(f"batch {outcome.batch_id}: {_name(r)} in suite {suite} (unit {unit}) could not run: {messages[0]}")
    res = r.result or {}
    count = unexpected if unexpected is not None else res.get("unexpected_count", 0 if r.success else rows)
    outcome.results.append(
        {
            "expectation": _name(r),
            "suite": suite,
            "unit": unit,
            "level": LEVELS.get(_name(r), Level.ROW).value,
            "success": bool(r.success) if unexpected is None else unexpected == 0,
            "unexpected": int(count or 0),
            "rows": int(rows),
            **({"observed": res["observed_value"]} if "observed_value" in res else {}),
        }
    )


def _apply(outcome: ValidationOutcome, frame: pd.DataFrame, name: str, bad: Iterable[int], failures: dict[int, set[str]]) -> None:
    """Row-level failures join the rows' failure sets; warnings are noted per series."""
    bad = list(bad)
    if not bad:
        return
    if LEVELS.get(name, Level.ROW) is Level.WARNING:
        rows = frame.loc[bad]
        for (service, metric, labels), part in rows.groupby(SERIES, sort=True, dropna=False):
            outcome.warnings.append({"expectation": name, "service": service, "metric": metric, "labels": labels, "rows": len(part)})
        return
    for i in bad:
        failures.setdefault(int(i), set()).add(name)


def _finish(
    outcome: ValidationOutcome, df: pd.DataFrame, failures: dict[int, set[str]], now_ts: pd.Timestamp, frame: pd.DataFrame | None = None
) -> ValidationOutcome:
    """Split ``df`` into valid rows (canonical, typed) and quarantined rows (with why and the observed value)."""
    import pandas as pd

    bad_index = sorted(failures)
    good = df.drop(index=bad_index)
    if frame is not None and len(good):
        good = good.copy()
        good["ts"] = frame.loc[good.index, "ts"]
        good["value"] = frame.loc[good.index, "value"]
    outcome.valid = good.reindex(columns=list(CANONICAL_COLUMNS)).assign(batch_id=outcome.batch_id)

    bad = df.loc[bad_index]
    q = pd.DataFrame(index=bad.index)
    for col in CANONICAL_COLUMNS:
        if frame is not None and col in ("ts", "value"):
            q[col] = frame[col].reindex(bad.index)
        elif col in bad.columns:
            q[col] = bad[col]
        else:
            q[col] = None
    if "value" in bad.columns and frame is None:
        q["value"] = pd.to_numeric(bad["value"], errors="coerce")
    if "ts" in bad.columns and frame is None:
        q["ts"] = pd.to_datetime(bad["ts"], utc=True, errors="coerce", format="mixed") if len(bad) else bad["ts"]
    q["batch_id"] = outcome.batch_id
    q["row"] = bad_index
    q["raw_value"] = [repr(v) for v in bad["value"]] if "value" in bad.columns else ""
    q["raw_record"] = [_raw_record(bad, i) for i in bad.index]
    q["failed_expectations"] = [";".join(sorted(failures[i])) for i in bad_index]
    q["quarantined_at"] = now_ts
    for col in ("service", "tier", "metric", "unit", "source", "labels"):
        q[col] = q[col].astype(object).where(q[col].notna(), "").astype(str)
    outcome.quarantined = q.reset_index(drop=True)
    return outcome


def _raw_record(bad: pd.DataFrame, i: int) -> str:
    """The row as it arrived (every column, or the raw line a parser could not split)."""
    row = bad.loc[i]
    if "raw_line" in bad.columns and isinstance(row.get("raw_line"), str) and row.get("raw_line"):
        return json.dumps({"line": row["raw_line"], "error": row.get("parse_error", "")})
    return json.dumps({c: row[c] for c in bad.columns if c not in ("raw_line", "parse_error")}, default=str)


def describe_failures(outcome: ValidationOutcome, limit: int = 3, max_series: int = 20) -> str:
    """A message naming the failing series, expectations and a few offending rows (the ``max_series`` largest groups)."""
    q = outcome.quarantined
    lines = [f"batch {outcome.batch_id}: {len(q)} of {outcome.rows_in} rows quarantined ({outcome.failure_ratio:.1%})"]
    if outcome.batch_failure:
        lines.append(outcome.batch_failure)
    elif len(q):
        rows_in = outcome.all_rows().groupby("service").size()
        held = q.groupby("service").size()
        shares = sorted(((held[s] / rows_in[s], s) for s in held.index if s in rows_in.index), reverse=True)
        lines.append(
            "  per service: "
            + ", ".join(f"{s} {held[s]}/{rows_in[s]} ({r:.1%})" for r, s in shares[:10])
            + (f", and {len(shares) - 10} more" if len(shares) > 10 else "")
        )
    groups = sorted(q.groupby(["service", "metric", "failed_expectations"], sort=True), key=lambda g: -len(g[1]))
    for (service, metric, failed), rows in groups[:max_series]:
        sample = ", ".join(
            f"{r.ts:%Y-%m-%dT%H:%M}Z={r.raw_value}" if r.ts == r.ts and r.ts is not None else f"row {r.row}={r.raw_value}"
            for r in rows.head(limit).itertuples()
        )
        lines.append(f"  series {service or '?'}/{metric or '?'}: {failed} on {len(rows)} rows, e.g. {sample}")
    if len(groups) > max_series:
        lines.append(f"  ... and {len(groups) - max_series} more (series, expectations) groups: see the quarantine table")
    return "\n".join(lines)
