"""Cache warming plans: which keys to load ahead of a peak or after a cache loss, with adaptive TTLs (SPEC section 6)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from include.headroom.config import AdaptiveTtl, HeadroomConfig, Service


def adaptive_ttl(policy: AdaptiveTtl, hit_rate: float, volatility: float, object_bytes: int) -> int:
    """TTL in seconds: large objects short, hot and stable keys long, everything else the default."""
    if object_bytes > policy.large_object_bytes:
        return policy.large_object_ttl_s
    if hit_rate > policy.hot_hit_rate and volatility < policy.hot_max_volatility:
        return policy.hot_ttl_s
    return policy.default_ttl_s


@dataclass(frozen=True)
class HotKey:
    key: str
    frequency: float
    size_bytes: int


def sample_hot_keys(service: str, count: int = 2000, seed: int = 7) -> list[HotKey]:
    """The sample fleet's key population: Zipf-distributed request frequencies and log-normal object sizes, deterministic per service."""
    import zlib

    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(service.encode())])
    ranks = np.arange(1, count + 1)
    frequency = 1.0 / ranks**1.1
    frequency = frequency / frequency.sum()
    sizes = np.clip(rng.lognormal(mean=9.0, sigma=1.5, size=count), 64, 8 * 1024 * 1024).astype(int)
    return [HotKey(f"{service}:item:{r}", float(f), int(s)) for r, f, s in zip(ranks, frequency, sizes)]


@dataclass(frozen=True)
class WarmPlan:
    service: str
    trigger: str
    keys: int
    bytes: int
    ttl_histogram: dict[int, int] = field(default_factory=dict)
    top_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_warming(
    config: HeadroomConfig,
    service: Service,
    trigger: str,
    hit_rate: float,
    volatility: float,
    memory_budget_bytes: int,
    keys: list[HotKey] | None = None,
) -> WarmPlan:
    """Pick the most requested keys that fit the memory budget (at most ``max_keys``), each with its adaptive TTL."""
    cache = config.cache
    candidates = sorted(keys if keys is not None else sample_hot_keys(service.name), key=lambda k: -k.frequency)
    budget = int(memory_budget_bytes * cache.memory_budget_fraction)
    chosen, used, ttls = [], 0, {}
    for key in candidates:
        if len(chosen) >= cache.max_keys:
            break
        if used + key.size_bytes > budget:
            continue
        ttl = adaptive_ttl(cache.adaptive_ttl, hit_rate, volatility, key.size_bytes)
        chosen.append(key.key)
        used += key.size_bytes
        ttls[ttl] = ttls.get(ttl, 0) + 1
    return WarmPlan(service=service.name, trigger=trigger, keys=len(chosen), bytes=used, ttl_histogram=ttls, top_keys=tuple(chosen[:5]))
