"""The URL warmer against a local CDN stand-in: bounded concurrency, hit ratio from X-Cache, 5xx retried, slow edges timed out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from include.headroom.cache.cdn import warm_urls
from include.headroom.cache.redis_warmer import WarmStatus
from include.headroom.cache.settings import load_cache_settings
from tests.servers import origin_stand_in  # noqa: F401 (fixture)

PATHS = [f"/catalog-api:item:{i}" for i in range(1, 41)]


@pytest.fixture(scope="module")
def cdn():
    return replace(load_cache_settings().cdn, concurrency=4, timeout_s=2, retries=2, backoff_s=0.01)


def test_warms_every_url_within_the_concurrency_bound(origin_stand_in, cdn):
    origin_stand_in.delay_s = 0.02  # long enough for requests to overlap
    result = warm_urls(origin_stand_in.url, PATHS, cdn)
    assert (result.status, result.warmed, result.errors, result.bytes) == (WarmStatus.COMPLETE, 40, 0, 40 * 1024)
    assert result.hit_ratio_before == 0.0 and result.hit_ratio_after == 1.0
    assert all(origin_stand_in.requests[p] == 2 for p in PATHS)  # warm-up, then the check
    assert 1 < origin_stand_in.max_in_flight <= 4


def test_5xx_is_retried_and_a_dead_url_is_partial(origin_stand_in, cdn):
    origin_stand_in.fail_next = 3
    origin_stand_in.fail_paths = {PATHS[0]}
    result = warm_urls(origin_stand_in.url, PATHS[:10], cdn)
    assert (result.status, result.warmed, result.errors) == (WarmStatus.PARTIAL, 9, 1)
    assert result.error_samples == [f"{PATHS[0]}: failed after 3 attempts: HTTP 503"]
    assert result.stop_reason == "1 of 10 URLs failed"


def test_slow_edge_times_out_and_fails(origin_stand_in, cdn):
    origin_stand_in.delay_s = 0.6
    result = warm_urls(origin_stand_in.url, PATHS[:3], replace(cdn, timeout_s=0.1, retries=1))
    assert (result.status, result.warmed, result.errors) == (WarmStatus.FAILED, 0, 3)
    assert "ReadTimeout" in result.error_samples[0]
