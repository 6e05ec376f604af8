"""Adaptive TTLs (SPEC section 6) and warm plans within the memory budget."""

from __future__ import annotations

import pytest

from include.headroom.cache.warming import HotKey, adaptive_ttl, plan_warming, sample_hot_keys


@pytest.mark.parametrize(("hit_rate", "volatility", "size", "ttl"), [
    (0.95, 0.05, 10_000, 3600),      # hot and stable
    (0.95, 0.20, 10_000, 600),       # hot but volatile
    (0.60, 0.05, 10_000, 600),       # cold
    (0.95, 0.05, 2_000_000, 300),    # large object, whatever its heat
])
def test_adaptive_ttl(config, hit_rate, volatility, size, ttl):
    assert adaptive_ttl(config.cache.adaptive_ttl, hit_rate, volatility, size) == ttl


def test_plan_respects_budget_and_prefers_frequent_keys(config):
    keys = [HotKey("a", 0.5, 600), HotKey("b", 0.3, 600), HotKey("c", 0.2, 100)]
    plan = plan_warming(config, config.service("catalog-api"), "cache_bound", 0.9, 0.05, memory_budget_bytes=1000, keys=keys)
    # budget 1000 * 0.8 = 800 bytes: "a" (600) fits, "b" does not, "c" (100) does
    assert (plan.keys, plan.bytes, plan.top_keys) == (2, 700, ("a", "c"))
    assert plan.ttl_histogram == {3600: 2}


def test_sample_keys_are_deterministic_and_zipf_like():
    a, b = sample_hot_keys("catalog-api"), sample_hot_keys("catalog-api")
    assert a == b
    assert a[0].frequency > 10 * a[100].frequency
    assert sample_hot_keys("orders-api")[0].size_bytes != a[0].size_bytes or sample_hot_keys("orders-api")[1].size_bytes != a[1].size_bytes
