"""Adaptive TTLs (SPEC section 6) with tier overrides, hot-key ranking, warm plans within the budget, triggers, settings."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from include.headroom.cache.settings import load_cache_settings
from include.headroom.cache.warming import (
    HotKey, Trigger, adaptive_ttl, finding_triggers, forecast_peak, plan_warming, rank_hot_keys, sample_hot_keys,
)
from include.headroom.exceptions import ConfigError

NOW = pd.Timestamp("2026-11-20T12:00:00Z")


@pytest.fixture(scope="module")
def settings():
    return load_cache_settings()


@pytest.mark.parametrize(("hit_rate", "volatility", "size", "ttl"), [
    (0.95, 0.05, 10_000, 3600),      # hot and stable
    (0.95, 0.20, 10_000, 600),       # hot but volatile
    (0.60, 0.05, 10_000, 600),       # cold
    (0.95, 0.05, 2_000_000, 300),    # large object, whatever its heat
])
def test_adaptive_ttl(config, hit_rate, volatility, size, ttl):
    assert adaptive_ttl(config.cache.adaptive_ttl, hit_rate, volatility, size) == ttl


def test_tier_overrides_change_only_their_fields(settings):
    assert settings.ttl_policy("standard") == settings.adaptive_ttl
    critical = settings.ttl_policy("critical")
    assert (critical.hot_ttl_s, critical.default_ttl_s, critical.large_object_ttl_s) == (1800, 300, 300)
    assert settings.ttl_policy("basic").default_ttl_s == 900 and settings.ttl_policy("basic").hot_ttl_s == 3600


def test_settings_name_the_bad_field(tmp_path):
    from pathlib import Path

    from include.headroom.config import CONFIG_DIR

    for f in Path(CONFIG_DIR).glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    text = (tmp_path / "cache.yaml").read_text()
    (tmp_path / "cache.yaml").write_text(text.replace("memory_budget_fraction: 0.8", "memory_budget_fraction: 1.5"))
    with pytest.raises(ConfigError, match=r"warming.memory_budget_fraction=1.5 must be in \(0, 1\]"):
        load_cache_settings(tmp_path)
    (tmp_path / "cache.yaml").write_text(text.replace("critical: {hot_ttl_s: 1800", "critical: {hot_tll_s: 1800"))
    with pytest.raises(ConfigError, match=r"tier_overrides.critical: unknown fields \['hot_tll_s'\]"):
        load_cache_settings(tmp_path)


def test_ranking_weights_recent_requests_and_scales_by_the_peak():
    log = pd.DataFrame({
        "ts": [NOW - pd.Timedelta(minutes=m) for m in (50, 50, 50, 1, 1)],
        "key": ["old", "old", "old", "new", "new"],
        "size_bytes": [100] * 5,
        "hit": [True, True, False, True, True],
    })
    # half-life 15 min: three requests 50 min ago weigh 3 * 2^(-50/15) = 0.30, two 1 min ago 2 * 0.955 = 1.91
    ranked = rank_hot_keys(log, NOW, half_life_s=900, peak_rps=500.0)
    assert [k.key for k in ranked] == ["new", "old"]
    assert ranked[0].frequency == pytest.approx(1.91 / 2.21, abs=0.01)
    assert ranked[0].score == pytest.approx(500 * ranked[0].frequency)
    assert (ranked[0].hit_rate, ranked[1].hit_rate) == (1.0, pytest.approx(2 / 3))


def test_plan_respects_budget_and_prefers_frequent_keys(config, settings):
    keys = [HotKey("a", 0.5, 600), HotKey("b", 0.3, 600), HotKey("c", 0.2, 100)]
    plan = plan_warming(config, config.service("catalog-api"), "cache_bound", 0.9, 0.05, memory_budget_bytes=800, keys=keys,
                        settings=settings)
    # 800 bytes: "a" (600) fits, "b" does not, "c" (100) does
    assert (plan.keys, plan.bytes, plan.top_keys) == (2, 700, ("a", "c"))
    assert plan.ttl_histogram == {3600: 2}
    assert plan.entries == (("a", 600, 3600), ("c", 100, 3600))


def test_plan_uses_each_keys_hit_rate_the_tier_policy_and_max_keys(config, settings):
    keys = [HotKey("hot", 0.5, 100, hit_rate=0.95), HotKey("cold", 0.3, 100, hit_rate=0.5), HotKey("big", 0.2, 2_000_000, hit_rate=0.99)]
    standard = plan_warming(config, config.service("catalog-api"), "cache_loss", 0.9, 0.05, 10**9, keys, settings)
    assert [e[2] for e in standard.entries] == [3600, 600, 300]
    critical = next(s for s in config.services if s.tier.value == "critical")
    assert [e[2] for e in plan_warming(config, critical, "cache_loss", 0.9, 0.05, 10**9, keys, settings).entries] == [1800, 300, 300]
    few = replace(settings, warming=replace(settings.warming, max_keys=2))
    assert plan_warming(config, config.service("catalog-api"), "manual", 0.9, 0.05, 10**9, keys, few).keys == 2


def test_forecast_peak_within_the_lead_time_only():
    recent = pd.DataFrame({"service": "s", "metric": "throughput", "value": [100.0, 100.0]})
    forecasts = pd.DataFrame({"service": "s", "metric": "throughput",
                              "ds": [NOW + pd.Timedelta(minutes=m) for m in (10, 25, 40)], "yhat": [110.0, 130.0, 300.0]})
    # 12:30 lies between 130 (12:25) and 300 (12:40): 130 + 5/15 * 170
    assert forecast_peak(forecasts, recent, "s", NOW, lead_time_s=1800, peak_ratio=1.2) == pytest.approx(130 + 170 / 3)
    assert forecast_peak(forecasts, recent, "s", NOW, lead_time_s=1800, peak_ratio=2.0) is None
    assert forecast_peak(forecasts, recent, "s", NOW, lead_time_s=1200, peak_ratio=1.2) == pytest.approx(110 + 20 * 10 / 15)
    assert forecast_peak(forecasts, recent, "s", NOW, lead_time_s=3000, peak_ratio=2.0) == 300.0
    assert forecast_peak(forecasts.iloc[:0], recent, "s", NOW, 1800, 1.2) is None
    hourly = pd.DataFrame({"service": "s", "metric": "throughput", "ds": [NOW - pd.Timedelta(minutes=30), NOW + pd.Timedelta(minutes=30)],
                           "yhat": [100.0, 200.0]})
    # no grid point within 15 minutes: the forecast is interpolated there (100 + 45/60 * 100 = 175)
    assert forecast_peak(hourly, recent, "s", NOW, lead_time_s=900, peak_ratio=1.2) == pytest.approx(175.0)
    assert forecast_peak(hourly, recent, "s", NOW + pd.Timedelta(hours=2), lead_time_s=900, peak_ratio=1.0) is None


def test_findings_give_cache_bound_and_cache_loss_triggers():
    findings = pd.DataFrame({"service": ["a", "b", "c"], "type": ["cache_bound", "cache_bound", "cpu_bound"],
                             "kind": ["observed", "predicted", "observed"],
                             "root_causes": ['[{"signal": "cache_hit_ratio"}]', "[]", "[]"]})
    assert finding_triggers(findings, "a") == [Trigger.CACHE_BOUND, Trigger.CACHE_LOSS]
    assert finding_triggers(findings, "b") == [Trigger.CACHE_BOUND]
    assert finding_triggers(findings, "c") == []


def test_sample_keys_are_deterministic_and_zipf_like():
    a, b = sample_hot_keys("catalog-api"), sample_hot_keys("catalog-api")
    assert a == b
    assert a[0].frequency > 10 * a[100].frequency


def test_report_line_from_a_cache_audit_record():
    from include.headroom.cache.warming import describe_cache_action

    line = describe_cache_action("warm", "applied", '{"hit_ratio": 0.0, "used_memory": 1}',
                                 '{"hit_ratio": 0.8664, "warmed": 500, "bytes": 1740000}')
    assert line == "warm [applied] 500 warmed, 1.7 MB, hit ratio 0.000 -> 0.866"
    assert describe_cache_action("warm", "dry_run", '{"hit_rate": 0.9}', '{"keys": 12}') == "warm [dry_run]"
