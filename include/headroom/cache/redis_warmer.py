"""Warming a Redis cache from a plan: memory guard, skip fresh keys, atomic pipelined batches with TTLs, rate limit, retries.

Every value is written with ``SET key value EX ttl`` (value and TTL in one command) inside a
``MULTI``/``EXEC`` batch, so Redis never holds a value without its TTL and a refused batch
(OOM, lost connection) leaves nothing half-written.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.exceptions import CacheUnavailableError
from include.headroom.resilience import RetryPolicy, TokenBucket, describe, retry

if TYPE_CHECKING:
    import redis

    from include.headroom.cache.origin import Origin
    from include.headroom.cache.settings import RedisSettings, WarmingSettings

# Redis' own per-key overhead (dict entry, object headers, expiry entry) added to key + value when
# checking the memory guard; a conservative round figure, not a tuning knob.
_KEY_OVERHEAD_BYTES = 96
_MAX_ERRORS_KEPT = 20


class WarmStatus(str, Enum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    NOOP = "noop"


@dataclass
class WarmResult:
    """What one warming run did; goes to the audit trail as is."""

    target: str
    planned: int = 0
    warmed: int = 0
    skipped_fresh: int = 0
    bytes: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    status: WarmStatus = WarmStatus.NOOP
    stop_reason: str | None = None
    used_memory_before: int | None = None
    used_memory_after: int | None = None
    memory_limit_bytes: int | None = None
    hit_ratio_before: float | None = None
    hit_ratio_after: float | None = None

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _MAX_ERRORS_KEPT:
            self.error_samples.append(message)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


def keyspace_counters(client: redis.Redis) -> tuple[int, int]:
    """``INFO stats`` keyspace_hits and keyspace_misses."""
    stats = client.info("stats")
    return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])


def keyspace_hit_ratio(client: redis.Redis) -> float | None:
    """The server's hit ratio since its stats were last reset; ``None`` before any lookup."""
    hits, misses = keyspace_counters(client)
    return hits / (hits + misses) if hits + misses else None


def replay_hit_ratio(client: redis.Redis, keys: Sequence[str], batch_size: int = 1000) -> float | None:
    """Replay lookups of ``keys`` (pipelined ``EXISTS``) and return the hit ratio Redis counted for them (``INFO stats`` deltas)."""
    if not keys:
        return None
    hits0, misses0 = keyspace_counters(client)
    for i in range(0, len(keys), batch_size):
        pipe = client.pipeline(transaction=False)
        for key in keys[i : i + batch_size]:
            pipe.exists(key)
        pipe.execute()
    hits1, misses1 = keyspace_counters(client)
    looked = (hits1 - hits0) + (misses1 - misses0)
    return (hits1 - hits0) / looked if looked else None


def memory_limit(client: redis.Redis, fraction: float) -> tuple[int, int]:
    """``(used_memory, limit)``: the limit is ``fraction`` x ``maxmemory`` (x the host's memory when maxmemory is 0)."""
    info = client.info("memory")
    ceiling = int(info.get("maxmemory") or 0) or int(info.get("total_system_memory") or 0)
    return int(info["used_memory"]), int(ceiling * fraction)


def _stale_or_missing(client: redis.Redis, entries: Sequence[Sequence[Any]], rewarm_below_s: int) -> list[Sequence[Any]]:
    """Entries whose key is absent or expires within ``rewarm_below_s``; keys without a TTL are someone else's and left alone."""
    pipe = client.pipeline(transaction=False)
    for key, *_ in entries:
        pipe.pttl(key)
    ttls = pipe.execute()
    return [e for e, pttl in zip(entries, ttls, strict=False) if pttl == -2 or (pttl >= 0 and pttl < rewarm_below_s * 1000)]


def _is_oom(exc: Exception) -> bool:
    import redis as redis_lib

    text = str(exc)
    return (
        isinstance(exc, (redis_lib.exceptions.OutOfMemoryError, redis_lib.exceptions.ExecAbortError))
        or "OOM" in text
        or "maxmemory" in text
    )


def warm_redis(
    client: redis.Redis,
    entries: Sequence[Sequence[Any]],
    origin: Origin,
    redis_settings: RedisSettings,
    warming: WarmingSettings,
    target: str = "redis",
    replay_keys: Sequence[str] = (),
    sleep: Any = time.sleep,
) -> WarmResult:
    """Write ``entries`` (``[key, size_bytes, ttl_s]``, best first) into Redis.

    Reads ``INFO memory`` first and before every batch, and stops before ``used_memory`` would pass
    ``memory_budget_fraction`` x ``maxmemory``. Keys already present are skipped unless their TTL is
    below ``rewarm_below_ttl_s``. Connection errors are retried ``retries`` times with exponential
    backoff; an OOM refusal stops the run. The result says what was done: ``complete``, ``partial``
    (stopped early or some keys failed, with the reason), ``failed`` (nothing written) or ``noop``.

    :param replay_keys: lookups replayed before and after warming to measure the hit ratio (``INFO stats``).
    """
    import redis as redis_lib

    started = time.monotonic()
    result = WarmResult(target=target, planned=len(entries))

    policy = RetryPolicy(attempts=redis_settings.retries + 1, base_delay_s=redis_settings.backoff_s)
    transient = (redis_lib.ConnectionError, redis_lib.TimeoutError)

    def retried(call: Any) -> Any:
        return retry(
            call,
            policy,
            what="redis",
            retryable=lambda exc: isinstance(exc, transient),
            sleep=sleep,
            exhausted=lambda n, exc: CacheUnavailableError(f"redis unavailable after {n} attempts: {describe(exc)}"),
        )

    try:
        result.used_memory_before, result.memory_limit_bytes = retried(lambda: memory_limit(client, warming.memory_budget_fraction))
        result.hit_ratio_before = retried(lambda: replay_hit_ratio(client, replay_keys) if replay_keys else keyspace_hit_ratio(client))
    except (CacheUnavailableError, redis_lib.RedisError) as exc:
        result.status, result.stop_reason = (
            WarmStatus.FAILED,
            (str(exc) if isinstance(exc, CacheUnavailableError) else f"redis error: {exc}"),
        )
        result.duration_s = round(time.monotonic() - started, 3)
        return result

    rate = redis_settings.rate_keys_per_s
    limiter = TokenBucket(rate=rate, capacity=max(1.0, rate))  # keys per second, a second's worth at once
    used = result.used_memory_before
    inflation, last_estimate = 1.0, 0  # measured growth of used_memory per estimated byte, learnt from each batch
    before_write = used
    for i in range(0, len(entries), redis_settings.batch_size):
        batch = list(entries[i : i + redis_settings.batch_size])
        try:
            todo = retried(lambda batch=batch: _stale_or_missing(client, batch, warming.rewarm_below_ttl_s))
            used, _ = retried(lambda: memory_limit(client, warming.memory_budget_fraction))
        except (CacheUnavailableError, redis_lib.RedisError) as exc:
            result.stop_reason = str(exc) if isinstance(exc, CacheUnavailableError) else f"redis error: {exc}"
            break
        if last_estimate:
            inflation = max(inflation, (used - before_write) / last_estimate)
            last_estimate = 0
        result.skipped_fresh += len(batch) - len(todo)
        if not todo:
            continue
        fits, room = [], result.memory_limit_bytes - used
        for entry in todo:
            cost = int((len(entry[0]) + int(entry[1]) + _KEY_OVERHEAD_BYTES) * inflation)
            if cost > room:
                result.stop_reason = (
                    f"memory guard: used_memory {used} B + next key would pass {warming.memory_budget_fraction:.0%} "
                    f"of maxmemory ({result.memory_limit_bytes} B)"
                )
                break
            fits.append(entry)
            room -= cost
        fetched = origin.fetch([(e[0], int(e[1])) for e in fits])
        for key, why in fetched.errors.items():
            result.error(f"origin {key}: {why}")
        writes = [(e[0], fetched.values[e[0]], int(e[2])) for e in fits if e[0] in fetched.values]
        if writes:

            def write(writes: list = writes) -> None:
                pipe = client.pipeline(transaction=True)
                for key, value, ttl in writes:
                    pipe.set(key, value, ex=ttl)
                pipe.execute()

            try:
                before_write = used
                retried(write)
                last_estimate = sum(len(k) + len(v) + _KEY_OVERHEAD_BYTES for k, v, _ in writes)
                result.warmed += len(writes)
                result.bytes += sum(len(v) for _, v, _ in writes)
            except CacheUnavailableError as exc:
                result.stop_reason = str(exc)
            except redis_lib.RedisError as exc:  # the MULTI/EXEC batch was refused as a whole: nothing of it was written
                kind = "out of memory" if _is_oom(exc) else type(exc).__name__
                result.stop_reason = f"redis refused writes ({kind}): {exc}"
        if result.stop_reason:
            break
        limiter.acquire(len(writes))

    try:
        result.used_memory_after, _ = memory_limit(client, warming.memory_budget_fraction)
        result.hit_ratio_after = replay_hit_ratio(client, replay_keys) if replay_keys else keyspace_hit_ratio(client)
    except redis_lib.RedisError as exc:
        result.error(f"after-run measurement failed: {exc}")
    guard = (result.stop_reason or "").startswith("memory guard")
    if result.warmed == 0 and (result.stop_reason or result.errors) and result.skipped_fresh == 0 and not guard:
        result.status = WarmStatus.FAILED
    elif result.stop_reason or result.errors:
        result.status = WarmStatus.PARTIAL
    elif result.warmed == 0:
        result.status = WarmStatus.NOOP
    else:
        result.status = WarmStatus.COMPLETE
    result.duration_s = round(time.monotonic() - started, 3)
    return result
