"""Warming a real redis-server: fills it, stays under the memory fraction, sets the TTLs, skips fresh keys, raises the
hit ratio of a replayed access log, and survives an unreachable Redis, OOM refusals and a failing or slow origin."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from include.headroom.cache.access_log import sample_access_log, sample_value
from include.headroom.cache.origin import Fetched, HttpOrigin, LoaderOrigin
from include.headroom.cache.redis_warmer import WarmStatus, replay_hit_ratio, warm_redis
from include.headroom.cache.settings import load_cache_settings
from include.headroom.cache.warming import plan_warming, rank_hot_keys
from tests.servers import OriginStandIn, RedisServer, origin_stand_in, redis_server  # noqa: F401 (fixtures)

SERVICE = "catalog-api"


@pytest.fixture(scope="module")
def settings():
    return load_cache_settings()


@pytest.fixture
def client(redis_server):
    client = redis_server.client()
    client.flushall()
    client.config_set("maxmemory", "16mb")
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_resetstat()
    yield client
    client.flushall()


@pytest.fixture(scope="module")
def log(fleet, settings):
    """An hour of catalog-api traffic up to a weekday noon, and the 10 minutes after it (the replay)."""
    now = fleet.anchor - pd.Timedelta(days=1) + pd.Timedelta(hours=12)
    past = sample_access_log(fleet, settings.access_log, SERVICE, now - pd.Timedelta(seconds=settings.warming.lookback_s), now)
    after = sample_access_log(fleet, settings.access_log, SERVICE, now, now + pd.Timedelta(minutes=10))
    return now, past, after


def _plan(config, settings, log, **warming):
    now, past, _ = log
    settings = replace(settings, warming=replace(settings.warming, **warming))
    keys = rank_hot_keys(past, now, settings.warming.half_life_s, peak_rps=400.0)
    return plan_warming(config, config.service(SERVICE), "cache_loss", 0.9, 0.05, settings.warming.budget_bytes, keys, settings), settings


def test_warming_fills_redis_with_ttls_and_second_run_is_a_noop(config, settings, log, client):
    plan, settings = _plan(config, settings, log)
    assert plan.keys == settings.warming.max_keys == 500
    result = warm_redis(client, plan.entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming)
    assert (result.status, result.warmed, result.errors, result.skipped_fresh) == (WarmStatus.COMPLETE, 500, 0, 0)
    assert result.bytes == plan.bytes == sum(e[1] for e in plan.entries)
    assert client.dbsize() == 500
    for key, size, ttl in plan.entries[:: 50]:
        assert client.get(key) == sample_value(key, size)
        assert ttl - 5 <= client.ttl(key) <= ttl
    assert all(t > 0 for t in (client.ttl(k) for k, _, _ in plan.entries))  # never a value without a TTL
    assert {e[2] for e in plan.entries} <= {3600, 600, 300}

    again = warm_redis(client, plan.entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming)
    assert (again.status, again.warmed, again.skipped_fresh, again.bytes) == (WarmStatus.NOOP, 0, 500, 0)


def test_keys_about_to_expire_are_rewarmed_and_keys_without_ttl_left_alone(config, settings, log, client):
    plan, settings = _plan(config, settings, log)
    entries = plan.entries[:3]
    client.set(entries[0][0], b"old", ex=30)  # expires within rewarm_below_ttl_s (60 s)
    client.set(entries[1][0], b"someone else's, no TTL")
    client.set(entries[2][0], b"fresh", ex=3000)
    result = warm_redis(client, entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming)
    assert (result.warmed, result.skipped_fresh) == (1, 2)
    assert client.get(entries[0][0]) == sample_value(entries[0][0], entries[0][1]) and client.ttl(entries[0][0]) > 60
    assert client.get(entries[1][0]) == b"someone else's, no TTL" and client.ttl(entries[1][0]) == -1
    assert client.get(entries[2][0]) == b"fresh"


def test_memory_fraction_is_never_exceeded_and_nothing_is_evicted(config, settings, log, client):
    plan, settings = _plan(config, settings, log, max_keys=5000, budget_bytes=10**9)
    client.config_set("maxmemory", "8mb")
    assert plan.bytes > 8 * 2**20  # more than the whole cache
    client.set("hot:resident", b"x" * 1000, ex=3600)
    result = warm_redis(client, plan.entries, LoaderOrigin("sample_fleet"), replace(settings.redis, batch_size=200), settings.warming)
    limit = int(8 * 2**20 * settings.warming.memory_budget_fraction)
    assert result.status == WarmStatus.PARTIAL and result.stop_reason.startswith("memory guard")
    assert result.memory_limit_bytes == limit
    assert client.info("memory")["used_memory"] <= limit
    assert result.warmed > 1000 and client.dbsize() == result.warmed + 1
    assert client.info("stats")["evicted_keys"] == 0 and client.exists("hot:resident")


def test_replayed_hit_ratio_beats_the_cold_replay(config, settings, log, client):
    _, past, after = log
    plan, settings = _plan(config, settings, log)
    replay = list(after["key"])
    cold = replay_hit_ratio(client, replay)
    result = warm_redis(client, plan.entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming, replay_keys=replay)
    warm = replay_hit_ratio(client, replay)
    # the 500 best-ranked keys of the last hour take most of the next 10 minutes' requests
    covered = after["key"].isin({e[0] for e in plan.entries}).mean()
    assert cold == 0.0 and result.hit_ratio_before == 0.0
    assert warm == pytest.approx(covered) == pytest.approx(result.hit_ratio_after)
    assert warm > 0.6


def test_redis_down_fails_after_retries_without_writing(config, settings, log):
    plan, settings = _plan(config, settings, log)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = RedisServer().start()
    client = server.client(retry=Retry(NoBackoff(), 0))  # only the warmer's own retries
    server.stop()
    waits = []
    result = warm_redis(client, plan.entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming, sleep=waits.append)
    assert result.status == WarmStatus.FAILED and result.warmed == 0
    assert result.stop_reason.startswith(f"redis unavailable after {settings.redis.retries + 1} attempts")
    assert waits == [settings.redis.backoff_s * 2**i for i in range(settings.redis.retries)]


class _CrowdingOrigin:
    """A loader origin during whose fetch another client fills Redis (no eviction) past maxmemory."""

    name = "crowding"

    def __init__(self, client, after_batches: int) -> None:
        self.client, self.after, self.calls, self.inner = client, after_batches, 0, LoaderOrigin("sample_fleet")

    def fetch(self, entries) -> Fetched:
        self.calls += 1
        if self.calls == self.after + 1:
            pipe = self.client.pipeline(transaction=False)
            for i in range(3000):
                pipe.set(f"other:{i}", b"y" * 1024)
            pipe.execute(raise_on_error=False)  # until Redis refuses: the cache is full
        return self.inner.fetch(entries)


def test_oom_refusal_keeps_whole_batches_only(config, settings, log, client):
    plan, settings = _plan(config, settings, log)
    client.config_set("maxmemory", "4mb")
    client.config_set("maxmemory-policy", "noeviction")
    result = warm_redis(client, plan.entries, _CrowdingOrigin(client, after_batches=1), replace(settings.redis, batch_size=100),
                        replace(settings.warming, memory_budget_fraction=1.0))
    assert result.status == WarmStatus.PARTIAL and "out of memory" in result.stop_reason
    assert result.warmed == 100
    ours = [k for k, _, _ in plan.entries if client.exists(k)]
    assert ours == [k for k, _, _ in plan.entries[:100]]  # the refused batch left nothing behind
    assert all(client.ttl(k) > 0 for k in ours)


def test_http_origin_retries_5xx_and_records_failing_keys(config, settings, log, client, origin_stand_in):
    plan, settings = _plan(config, settings, log)
    entries = plan.entries[:40]
    origin_stand_in.fail_next = 2  # two 503s, then the retries succeed
    origin_stand_in.fail_paths = {f"/{entries[5][0]}"}  # this key always fails
    origin = HttpOrigin(origin_stand_in.url, timeout_s=2, retries=2, backoff_s=0.01, concurrency=4)
    result = warm_redis(client, entries, origin, settings.redis, settings.warming)
    assert result.status == WarmStatus.PARTIAL and (result.warmed, result.errors) == (39, 1)
    assert "HTTP 503" in result.error_samples[0] and entries[5][0] in result.error_samples[0]
    assert origin_stand_in.requests[f"/{entries[5][0]}"] == 3 and sum(origin_stand_in.requests.values()) == 40 + 2 + 2
    assert not client.exists(entries[5][0]) and client.get(entries[0][0]) == sample_value(entries[0][0], 1024)
    assert origin_stand_in.max_in_flight <= 4


def test_slow_origin_times_out_and_nothing_is_written(config, settings, log, client, origin_stand_in):
    plan, settings = _plan(config, settings, log)
    origin_stand_in.delay_s = 1.0
    origin = HttpOrigin(origin_stand_in.url, timeout_s=0.2, retries=1, backoff_s=0.01, concurrency=8)
    result = warm_redis(client, plan.entries[:8], origin, settings.redis, settings.warming)
    assert result.status == WarmStatus.FAILED and (result.warmed, result.errors) == (0, 8)
    assert "ReadTimeout" in result.error_samples[0] and client.dbsize() == 0


class _StoppingOrigin:
    """A loader origin that stops the Redis server while the second batch is being fetched."""

    name = "stopping"

    def __init__(self, server) -> None:
        self.server, self.calls, self.inner = server, 0, LoaderOrigin("sample_fleet")

    def fetch(self, entries) -> Fetched:
        self.calls += 1
        if self.calls == 2:
            self.server.stop()
        return self.inner.fetch(entries)


def test_redis_lost_mid_run_keeps_the_written_batches_as_partial(config, settings, log):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    plan, settings = _plan(config, settings, log)
    server = RedisServer().start()
    client = server.client(retry=Retry(NoBackoff(), 0))
    waits = []
    result = warm_redis(client, plan.entries, _StoppingOrigin(server), replace(settings.redis, batch_size=100), settings.warming,
                        sleep=waits.append)
    assert result.status == WarmStatus.PARTIAL and result.warmed == 100
    assert result.stop_reason.startswith(f"redis unavailable after {settings.redis.retries + 1} attempts")
    assert len(waits) == settings.redis.retries and "after-run measurement failed" in result.error_samples[-1]
