"""Warming a CDN: warm-up GETs for a URL list with bounded concurrency, timeouts and retries; hit ratio from ``X-Cache``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.cache.redis_warmer import WarmResult, WarmStatus
from include.headroom.exceptions import TransientError
from include.headroom.resilience import RetryPolicy, retry

if TYPE_CHECKING:
    import httpx

    from include.headroom.cache.settings import CdnSettings

CACHE_STATUS_HEADERS = ("x-cache", "cf-cache-status", "x-cache-status")


def _cache_hit(response: httpx.Response) -> bool | None:
    """Whether the edge served ``response`` from cache (``X-Cache: Hit from cloudfront``, ``HIT``...); ``None`` when it does not say."""
    for header in CACHE_STATUS_HEADERS:
        if header in response.headers:
            return response.headers[header].strip().lower().startswith("hit")
    return None


def warm_urls(base_url: str, paths: Sequence[str], settings: CdnSettings, client: httpx.Client | None = None,
              sleep: Any = time.sleep) -> WarmResult:
    """GET every path under ``base_url`` (at most ``concurrency`` at once, ``timeout_s`` each, 5xx and timeouts retried).

    The hit ratio before is the share of warm-up responses the edge already served from cache; after,
    the share of a second request per warmed path served from cache.
    """
    import httpx

    started = time.monotonic()
    result = WarmResult(target=f"cdn:{base_url}", planned=len(paths))
    own = client is None
    client = client or httpx.Client(base_url=base_url, timeout=settings.timeout_s,
                                    limits=httpx.Limits(max_connections=settings.concurrency))

    policy = RetryPolicy(attempts=settings.retries + 1, base_delay_s=settings.backoff_s)

    def get(path: str) -> tuple[str, httpx.Response | None, str | None]:
        def once() -> httpx.Response:
            try:
                response = client.get(path)
            except httpx.TransportError as exc:
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 500:
                raise TransientError(f"HTTP {response.status_code}")
            return response

        try:
            response = retry(once, policy, what=f"warm-up GET {path}", sleep=sleep,
                             exhausted=lambda n, exc: TransientError(f"failed after {n} attempts: {exc}"))
        except TransientError as exc:
            return path, None, str(exc)
        if response.status_code >= 400:
            return path, None, f"HTTP {response.status_code}"
        return path, response, None

    try:
        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            first = list(pool.map(get, paths))
            warmed = [p for p, r, _ in first if r is not None]
            second = list(pool.map(get, warmed))
    finally:
        if own:
            client.close()
    before = [_cache_hit(r) for _, r, _ in first if r is not None]
    after = [_cache_hit(r) for _, r, _ in second if r is not None]
    for path, response, error in first:
        if response is None:
            result.error(f"{path}: {error}")
        else:
            result.warmed += 1
            result.bytes += len(response.content)
    known_before, known_after = [b for b in before if b is not None], [a for a in after if a is not None]
    result.hit_ratio_before = sum(known_before) / len(known_before) if known_before else None
    result.hit_ratio_after = sum(known_after) / len(known_after) if known_after else None
    if result.errors:
        result.status = WarmStatus.FAILED if result.warmed == 0 else WarmStatus.PARTIAL
        result.stop_reason = f"{result.errors} of {len(paths)} URLs failed"
    else:
        result.status = WarmStatus.COMPLETE if paths else WarmStatus.NOOP
    result.duration_s = round(time.monotonic() - started, 3)
    return result
