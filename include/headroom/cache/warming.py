"""Cache warming plans: which keys to load ahead of a peak or after a cache loss, with adaptive TTLs (SPEC section 6).

Keys are ranked by their recent request frequency (recency-weighted, from the access log) times
the forecast traffic of the coming peak, i.e. by the requests per second each key is expected to
receive at the peak. The warm set is the best-ranked keys that fit the configured byte budget and
key count; the executor trims it further to the cache's free memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from include.headroom.cache.settings import AdaptiveTtl
from include.headroom.config import HeadroomConfig
from include.headroom.catalog import Service

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.cache.settings import CacheSettings


class Trigger(str, Enum):
    """Why a warming run happens."""

    CACHE_BOUND = "cache_bound"
    CACHE_LOSS = "cache_loss"
    FORECAST_PEAK = "forecast_peak"
    SCHEDULE = "schedule"
    MANUAL = "manual"


def adaptive_ttl(policy: AdaptiveTtl, hit_rate: float, volatility: float, object_bytes: int) -> int:
    """TTL in seconds: large objects short, hot and stable keys long, everything else the default."""
    if object_bytes > policy.large_object_bytes:
        return policy.large_object_ttl_s
    if hit_rate > policy.hot_hit_rate and volatility < policy.hot_max_volatility:
        return policy.hot_ttl_s
    return policy.default_ttl_s


@dataclass(frozen=True)
class HotKey:
    """One candidate key: its recency-weighted request rate share, size, and hit rate seen in the log."""

    key: str
    frequency: float
    size_bytes: int
    hit_rate: float | None = None
    score: float = 0.0


def sample_hot_keys(service: str, count: int = 2000, seed: int = 7) -> list[HotKey]:
    """A synthetic key population (Zipf frequencies, log-normal sizes), deterministic per service; for tests and demos."""
    import zlib

    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(service.encode())])
    ranks = np.arange(1, count + 1)
    frequency = 1.0 / ranks**1.1
    frequency = frequency / frequency.sum()
    sizes = np.clip(rng.lognormal(mean=9.0, sigma=1.5, size=count), 64, 8 * 1024 * 1024).astype(int)
    return [HotKey(f"{service}:item:{r}", float(f), int(s)) for r, f, s in zip(ranks, frequency, sizes, strict=False)]


def rank_hot_keys(log: pd.DataFrame, now: pd.Timestamp, half_life_s: float, peak_rps: float | None = None) -> list[HotKey]:
    """Rank the keys of an access log by recency-weighted frequency x the forecast traffic of the coming peak.

    :param log: access log rows (``ts``, ``key``, ``size_bytes``, ``hit``) of one service, up to ``now``.
    :param half_life_s: a request ``half_life_s`` old counts half as much as one at ``now``.
    :param peak_rps: the forecast request rate at the coming peak; ``None`` ranks by share alone (score = share).
    :return: keys best first; ``frequency`` is the key's share of the weighted requests, ``score`` its expected
        requests per second at the peak.
    """
    import numpy as np

    if len(log) == 0:
        return []
    age = (now - log["ts"]).dt.total_seconds().clip(lower=0).to_numpy(float)
    frame = log.assign(weight=np.exp2(-age / float(half_life_s)), hit_n=log["hit"].astype(float))
    grouped = frame.groupby("key", sort=False).agg(weight=("weight", "sum"), size_bytes=("size_bytes", "last"),
                                                   hit_rate=("hit_n", "mean"))
    grouped["share"] = grouped["weight"] / grouped["weight"].sum()
    grouped["score"] = grouped["share"] * (float(peak_rps) if peak_rps is not None else 1.0)
    grouped = grouped.sort_values(["score", "size_bytes"], ascending=[False, True], kind="stable")
    return [HotKey(str(k), float(r.share), int(r.size_bytes), float(r.hit_rate), float(r.score)) for k, r in grouped.iterrows()]


@dataclass(frozen=True)
class WarmPlan:
    """The keys to warm for one service, each with its TTL; ``entries`` are ``[key, size_bytes, ttl_s]`` best first."""

    service: str
    trigger: str
    keys: int
    bytes: int
    ttl_histogram: dict[int, int] = field(default_factory=dict)
    top_keys: tuple[str, ...] = ()
    entries: tuple[tuple[str, int, int], ...] = ()
    tier: str = ""
    peak_rps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["entries"] = [list(e) for e in self.entries]
        out["ttl_histogram"] = {str(k): v for k, v in self.ttl_histogram.items()}
        return out


def plan_warming(
    config: HeadroomConfig,
    service: Service,
    trigger: str,
    hit_rate: float,
    volatility: float,
    memory_budget_bytes: int,
    keys: list[HotKey] | None = None,
    settings: CacheSettings | None = None,
    peak_rps: float | None = None,
) -> WarmPlan:
    """Pick the best-ranked keys that fit ``memory_budget_bytes`` (at most ``max_keys``), each with its adaptive TTL.

    A key's TTL uses its own hit rate from the log when known (else the service's ``hit_rate``) and the
    service's hit-ratio ``volatility``, under the tier's TTL policy.
    """
    from include.headroom.cache.settings import load_cache_settings

    settings = settings or load_cache_settings()
    policy = settings.ttl_policy(str(getattr(service.tier, "value", service.tier)))
    candidates = keys if keys is not None else sample_hot_keys(service.name)
    candidates = sorted(candidates, key=lambda k: (-(k.score or k.frequency), k.size_bytes))
    budget = int(min(memory_budget_bytes, settings.warming.budget_bytes))
    entries, used, ttls = [], 0, {}
    for key in candidates:
        if len(entries) >= settings.warming.max_keys:
            break
        if used + key.size_bytes > budget:
            continue
        ttl = adaptive_ttl(policy, key.hit_rate if key.hit_rate is not None else hit_rate, volatility, key.size_bytes)
        entries.append((key.key, key.size_bytes, ttl))
        used += key.size_bytes
        ttls[ttl] = ttls.get(ttl, 0) + 1
    return WarmPlan(service=service.name, trigger=trigger, keys=len(entries), bytes=used, ttl_histogram=ttls,
                    top_keys=tuple(e[0] for e in entries[:5]), entries=tuple(entries),
                    tier=str(getattr(service.tier, "value", service.tier)), peak_rps=peak_rps)


def forecast_peak(forecasts: pd.DataFrame, recent: pd.DataFrame, service: str, now: pd.Timestamp, lead_time_s: float,
                  peak_ratio: float, metric: str = "throughput") -> float | None:
    """The forecast peak load of ``service`` within the lead time, when it reaches ``peak_ratio`` x the recent mean; else ``None``.

    :param forecasts: forecast rows (``service``, ``metric``, ``ds``, ``yhat``).
    :param recent: observed metric rows (``service``, ``metric``, ``value``) of the recent window.
    """
    import pandas as pd

    if len(forecasts) == 0:
        return None
    import numpy as np

    horizon = now + pd.Timedelta(seconds=lead_time_s)
    series = forecasts[(forecasts["service"] == service) & (forecasts["metric"] == metric)].sort_values("ds")
    observed = recent.loc[(recent["service"] == service) & (recent["metric"] == metric), "value"] if len(recent) else recent
    if len(series) == 0 or len(observed) == 0 or not (series["ds"].iloc[0] <= horizon and series["ds"].iloc[-1] > now):
        return None
    inside = series.loc[(series["ds"] > now) & (series["ds"] <= horizon), "yhat"].to_numpy(float)
    # the forecast grid (often hourly) may have no point inside a short lead time: interpolate at its end
    seconds = (series["ds"] - now).dt.total_seconds().to_numpy(float)
    at_horizon = float(np.interp(float(lead_time_s), seconds, series["yhat"].to_numpy(float)))
    peak, base = max([at_horizon, *inside]), float(observed.mean())
    return peak if base > 0 and peak >= peak_ratio * base else None


def finding_triggers(findings: pd.DataFrame, service: str) -> list[Trigger]:
    """Triggers from the bottleneck analysis: every cache_bound finding; an observed one caused by the hit ratio is also a cache loss."""
    if len(findings) == 0:
        return []
    rows = findings[(findings["service"] == service) & (findings["type"] == "cache_bound")]
    out = []
    for _, row in rows.iterrows():
        loss = str(row.get("kind")) == "observed" and "cache_hit_ratio" in str(row.get("root_causes") or "")
        out.append(Trigger.CACHE_BOUND)
        if loss:
            out.append(Trigger.CACHE_LOSS)
    return sorted(set(out), key=lambda t: list(Trigger).index(t))


def describe_cache_action(action: str, status: str, before: str | None, after: str | None) -> str:
    """One line for the report from a cache audit record: ``warm [applied] 500 keys, hit ratio 0.000 -> 0.866``."""
    import json

    text = f"{action} [{status}]"
    try:
        b, a = json.loads(before or "null") or {}, json.loads(after or "null") or {}
    except ValueError:
        return text
    if not isinstance(a, dict) or not isinstance(b, dict):
        return text
    if a.get("warmed") is not None:
        text += f" {a['warmed']} warmed, {int(a.get('bytes') or 0) / 1e6:.1f} MB"
    if a.get("hit_ratio") is not None and b.get("hit_ratio") is not None:
        text += f", hit ratio {b['hit_ratio']:.3f} -> {a['hit_ratio']:.3f}"
    return text
