"""Unit normalization: values converted to each metric's canonical unit, the original unit kept, the impossible refused."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.exceptions import ConfigError, DataError
from include.headroom.metrics.source_config import UnitSettings, load_source_settings
from include.headroom.metrics.units import conversion_factor, normalize_units, source_units


@pytest.fixture(scope="module")
def units():
    return load_source_settings().units


@pytest.mark.parametrize(("src", "dst", "factor"), [
    ("s", "ms", 1000.0), ("us", "ms", 0.001), ("ratio", "percent", 100.0), ("percent", "ratio", 0.01),
    ("MiB", "bytes", 1048576.0), ("req/min", "req/s", 1 / 60), ("Seconds", "ms", 1000.0), ("Count/Second", "req/s", 1.0),
])
def test_conversion_factors(units, src, dst, factor):
    assert conversion_factor(units, src, dst) == pytest.approx(factor, rel=1e-12)


def test_normalize_converts_and_keeps_the_original_unit(units):
    rows = pd.DataFrame({
        "ts": pd.to_datetime(["2026-11-01T00:00Z"] * 4), "service": ["a", "a", "b", "b"], "tier": "basic",
        "metric": ["response_time", "memory_utilization", "throughput", "replicas"], "value": [0.25, 0.5, 120.0, 3.0],
        "unit": ["s", "ratio", "req/min", "count"], "source": "x", "labels": "",
    })
    out = normalize_units(rows, units, "x")
    assert out[["value", "unit", "original_unit"]].values.tolist() == [
        [250.0, "ms", "s"], [50.0, "percent", "ratio"], [2.0, "req/s", "req/min"], [3.0, "count", "count"]]
    assert rows["unit"].tolist() == ["s", "ratio", "req/min", "count"]  # the caller's frame is untouched
    kept = source_units(out, "x", units).sort_values("metric")
    assert kept[["metric", "original_unit", "unit", "factor"]].values.tolist() == [
        ["memory_utilization", "ratio", "percent", 100.0], ["replicas", "count", "count", 1.0],
        ["response_time", "s", "ms", 1000.0], ["throughput", "req/min", "req/s", pytest.approx(1 / 60)]]


def test_unknown_and_unconvertible_units_name_source_series_and_field(units):
    rows = pd.DataFrame({"ts": pd.to_datetime(["2026-11-01T00:00Z"]), "service": ["a"], "tier": "basic", "metric": ["error_rate"],
                         "value": [1.0], "unit": ["furlongs"], "source": "x", "labels": ""})
    with pytest.raises(DataError, match=r"source 'x', series 'error_rate' of \['a'\]: field 'unit': unit 'furlongs' is unknown"):
        normalize_units(rows, units, "x")
    with pytest.raises(DataError, match=r"unit 'ms' \(time\) cannot be converted to 'ratio' \(fraction\)"):
        normalize_units(rows.assign(unit="ms"), units, "x")


def test_unit_settings_refuse_a_canonical_unit_without_a_factor():
    with pytest.raises(ConfigError, match=r"units.canonical.cost: unit 'eur' is not in units.factors"):
        UnitSettings(canonical={"cost": "eur"}, factors={"usd": ("money", 1.0)})
