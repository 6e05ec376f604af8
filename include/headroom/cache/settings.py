"""Cache settings from ``cache.yaml``: TTL policy with tier overrides, warming, Redis, origin, CDN and access log."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from include.headroom.configfile import config_directory, load
from include.headroom.configfile import require as _require
from include.headroom.exceptions import ConfigError

FILE = "cache.yaml"


@dataclass(frozen=True)
class AdaptiveTtl:
    hot_hit_rate: float
    hot_max_volatility: float
    hot_ttl_s: int
    large_object_bytes: int
    large_object_ttl_s: int
    default_ttl_s: int


@dataclass(frozen=True)
class WarmingSettings:
    """What to warm and when."""

    lead_time_s: int
    peak_ratio: float
    max_keys: int
    memory_budget_fraction: float
    budget_bytes: int
    lookback_s: int
    half_life_s: int
    rewarm_below_ttl_s: int
    dry_run: bool = True
    replay_requests: int = 2000

    def __post_init__(self) -> None:
        _require(
            0 < self.memory_budget_fraction <= 1,
            f"cache.yaml warming.memory_budget_fraction={self.memory_budget_fraction!r} must be in (0, 1]",
        )
        for name in ("lead_time_s", "max_keys", "budget_bytes", "lookback_s", "half_life_s"):
            _require(getattr(self, name) > 0, f"cache.yaml warming.{name}={getattr(self, name)!r} must be > 0")
        _require(self.peak_ratio >= 1, f"cache.yaml warming.peak_ratio={self.peak_ratio!r} must be >= 1")
        _require(self.rewarm_below_ttl_s >= 0, f"cache.yaml warming.rewarm_below_ttl_s={self.rewarm_below_ttl_s!r} must be >= 0")


@dataclass(frozen=True)
class RedisSettings:
    """How the Redis executor writes: pipelined batches, a rate limit, retries with backoff."""

    conn_id: str
    batch_size: int
    rate_keys_per_s: float
    retries: int
    backoff_s: float

    def __post_init__(self) -> None:
        _require(self.batch_size > 0, f"cache.yaml redis.batch_size={self.batch_size!r} must be > 0")
        _require(self.rate_keys_per_s > 0, f"cache.yaml redis.rate_keys_per_s={self.rate_keys_per_s!r} must be > 0")
        _require(self.retries >= 0, f"cache.yaml redis.retries={self.retries!r} must be >= 0")


@dataclass(frozen=True)
class OriginSettings:
    """Where warmed values come from: a registered loader function or an HTTP origin (``GET <url>/<key>``)."""

    kind: str
    loader: str | None
    url: str | None
    timeout_s: float
    retries: int
    backoff_s: float
    concurrency: int

    def __post_init__(self) -> None:
        _require(self.kind in ("loader", "http"), f"cache.yaml origin.kind={self.kind!r} must be 'loader' or 'http'")
        _require(self.kind != "loader" or bool(self.loader), "cache.yaml origin.loader must name a loader when origin.kind is 'loader'")
        _require(self.kind != "http" or bool(self.url), "cache.yaml origin.url must be set when origin.kind is 'http'")
        _require(self.concurrency > 0 and self.timeout_s > 0, "cache.yaml origin.concurrency and origin.timeout_s must be > 0")


@dataclass(frozen=True)
class CdnSettings:
    """The URL warmer (bounded concurrency, timeouts, retries) and CloudFront invalidations."""

    conn_id: str
    concurrency: int
    timeout_s: float
    retries: int
    backoff_s: float
    cloudfront_conn_id: str
    distribution_id: str | None = None

    def __post_init__(self) -> None:
        _require(self.concurrency > 0, f"cache.yaml cdn.concurrency={self.concurrency!r} must be > 0")
        _require(self.timeout_s > 0, f"cache.yaml cdn.timeout_s={self.timeout_s!r} must be > 0")


@dataclass(frozen=True)
class AccessLogSettings:
    """The access-log source: the sample fleet's generated log, or files (``<path>/<service>.csv`` or ``.jsonl``)."""

    source: str
    path: str | None
    sample_fraction: float
    population: int
    zipf_exponent: float

    def __post_init__(self) -> None:
        _require(self.source in ("sample_fleet", "file"), f"cache.yaml access_log.source={self.source!r} must be 'sample_fleet' or 'file'")
        _require(self.source != "file" or bool(self.path), "cache.yaml access_log.path must be set when access_log.source is 'file'")
        _require(0 < self.sample_fraction <= 1, f"cache.yaml access_log.sample_fraction={self.sample_fraction!r} must be in (0, 1]")
        _require(self.population > 0 and self.zipf_exponent > 0, "cache.yaml access_log.population and zipf_exponent must be > 0")


@dataclass(frozen=True)
class CacheSettings:
    """Everything ``cache.yaml`` sets (``get_config().cache``)."""

    adaptive_ttl: AdaptiveTtl
    warming: WarmingSettings
    redis: RedisSettings
    origin: OriginSettings
    cdn: CdnSettings
    access_log: AccessLogSettings
    tier_overrides: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {f.name for f in fields(AdaptiveTtl)}
        for tier, override in self.tier_overrides.items():
            unknown = sorted(set(override) - known)
            _require(not unknown, f"cache.yaml tier_overrides.{tier}: unknown fields {unknown}; allowed {sorted(known)}")

    def ttl_policy(self, tier: str) -> AdaptiveTtl:
        """The adaptive TTL policy of ``tier``: the defaults with the tier's overrides applied."""
        return replace(self.adaptive_ttl, **dict(self.tier_overrides.get(str(tier), {})))


def _section(kind: type, raw: Mapping[str, Any], name: str) -> Any:
    if not isinstance(raw.get(name), Mapping):
        raise ConfigError(f"cache.yaml: section {name!r} is missing or not a mapping")
    try:
        return kind(**raw[name])
    except TypeError as exc:
        raise ConfigError(f"cache.yaml {name}: {exc}") from exc


def parse_cache_settings(raw: Mapping[str, Any]) -> CacheSettings:
    """The settings of a ``cache.yaml`` mapping.

    :raises ConfigError: naming the section and field at fault.
    """
    overrides = raw.get("tier_overrides") or {}
    _require(isinstance(overrides, Mapping), "cache.yaml tier_overrides must be a mapping of tier -> fields")
    return CacheSettings(
        adaptive_ttl=_section(AdaptiveTtl, raw, "adaptive_ttl"),
        warming=_section(WarmingSettings, raw, "warming"),
        redis=_section(RedisSettings, raw, "redis"),
        origin=_section(OriginSettings, raw, "origin"),
        cdn=_section(CdnSettings, raw, "cdn"),
        access_log=_section(AccessLogSettings, raw, "access_log"),
        tier_overrides={str(k): dict(v) for k, v in overrides.items()},
    )


def load_cache_settings(config_dir: str | Path | None = None) -> CacheSettings:
    """The settings of ``cache.yaml`` in ``config_dir`` (default: the active configuration), read once per process.

    :raises ConfigError: naming the section and field at fault.
    """
    return load(config_directory(config_dir) / FILE, parse_cache_settings)
