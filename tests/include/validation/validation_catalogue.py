"""The bad-input catalogue: each case in a series of its own, with exactly what validation must do with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import numpy as np
import pandas as pd

START, END, NOW = pd.Timestamp("2026-10-31T23:00Z"), pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T00:05Z")


@dataclass
class Case:
    """One bad input, placed in a series of its own, and exactly what validation must do with it."""

    name: str
    service: str
    metric: str
    mutate: Callable[[pd.DataFrame, list[int]], list[int]]  # edits the series' rows in place; returns the rows to expect
    expected: str | None  # the failed expectations (``;``-joined) of every expected row; None: the rows stay valid
    warning: str | None = None  # a warning the series must carry instead
    rows: list[int] = field(default_factory=list)


def _set(column: str, value: Any, offset: int = 0) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def mutate(frame: pd.DataFrame, idx: list[int]) -> list[int]:
        frame.loc[idx[offset], column] = value
        return [idx[offset]]

    return mutate


def _scale_value(factor: float, offset: int) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def mutate(frame: pd.DataFrame, idx: list[int]) -> list[int]:
        frame.loc[idx[offset], "value"] = float(frame.loc[idx[offset], "value"]) * factor
        return [idx[offset]]

    return mutate


def _whole_series(fn: Callable[[pd.Series], pd.Series]) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def mutate(frame: pd.DataFrame, idx: list[int]) -> list[int]:
        frame.loc[idx, "value"] = fn(frame.loc[idx, "value"].astype(float)).to_numpy()
        return list(idx)

    return mutate


def _shift_ts(delta: str, offset: int) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def mutate(frame: pd.DataFrame, idx: list[int]) -> list[int]:
        frame.loc[idx[offset], "ts"] = frame.loc[idx[offset], "ts"] + pd.Timedelta(delta)
        return [idx[offset]]

    return mutate


def _swap(a: int, b: int) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def mutate(frame: pd.DataFrame, idx: list[int]) -> list[int]:
        frame.loc[[idx[a], idx[b]]] = frame.loc[[idx[b], idx[a]]].to_numpy()
        return []

    return mutate


CASES = [
    Case("nan", "blog-frontend", "throughput", _set("value", np.nan, 2), "expect_value_not_null"),
    Case("plus_inf", "blog-frontend", "response_time", _set("value", np.inf, 2), "expect_value_finite"),
    Case("minus_inf", "blog-frontend", "error_rate", _set("value", -np.inf, 2), "expect_value_finite"),
    Case("negative_latency", "docs-site", "response_time", _set("value", -3.0, 3), "expect_value_in_unit_range"),
    Case("utilization_250_percent", "docs-site", "cpu_utilization", _set("value", 250.0, 3), "expect_value_in_unit_range"),
    Case("ratio_above_one", "docs-site", "error_rate", _set("value", 1.7, 3), "expect_value_in_unit_range"),
    Case("string_in_value", "catalog-api", "throughput", _set("value", "n/a", 4), "expect_value_numeric"),
    Case("unknown_service", "catalog-api", "response_time", _set("service", "ghost-service", 4), "expect_known_service"),
    Case("unknown_tier", "catalog-api", "error_rate", _set("tier", "platinum", 4), "expect_known_tier;expect_tier_matches_catalog"),
    Case("tier_not_the_catalogs", "catalog-api", "cpu_utilization", _set("tier", "critical", 4), "expect_tier_matches_catalog"),
    Case("point_in_the_future", "notifications", "throughput", _set("ts", pd.Timestamp("2026-11-01T03:00Z"), 5),
         "expect_timestamp_in_interval;expect_timestamp_not_in_future"),
    Case("point_before_the_interval", "notifications", "response_time", _set("ts", pd.Timestamp("2026-10-30T12:00Z"), 5),
         "expect_timestamp_in_interval"),
    Case("timestamp_off_the_step_grid", "notifications", "error_rate", _shift_ts("150s", 5), "expect_timestamp_aligned_to_step"),
    Case("unknown_metric", "notifications", "cpu_utilization", _set("metric", "gpu_temperature", 5), "expect_known_metric"),
    Case("unit_not_allowed_for_metric", "notifications", "memory_utilization", _set("unit", "ms", 5), "expect_unit_for_metric"),
    Case("fractional_replicas", "search-api", "replicas", _set("value", 3.5, 6), "expect_value_integer"),
    Case("replicas_far_outside_catalog", "session-service", "replicas", _set("value", 1000.0, 6), "expect_replicas_within_catalog"),
    Case("spike_1000x", "search-api", "throughput", _scale_value(1000.0, 6), "expect_no_spike"),
    Case("milliseconds_sent_as_seconds", "orders-api", "response_time", _whole_series(lambda v: v / 1000.0), "expect_latency_plausible"),
    Case("flat_lined_series", "orders-api", "cpu_utilization", _whole_series(lambda v: v * 0 + 42.0), "expect_series_not_flat"),
    Case("out_of_order_timestamps", "user-profile", "response_time", _swap(3, 8), None, warning="expect_timestamps_in_order"),
]
DUPLICATED = ("user-profile", "throughput", [0, 1, 2])  # these points arrive twice: later copies are quarantined
COUNTER = ("checkout-api", "requests_total", 6)  # a cumulative counter that resets at this point


@dataclass
class Catalogue:
    rows: pd.DataFrame
    cases: dict[str, Case]
    duplicates: list[int]
    counter_reset: int
    outcome: Any = None


