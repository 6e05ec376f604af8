"""Origins that warmed values come from: registered loader functions, or an HTTP origin with timeouts and retries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from collections.abc import Callable, Sequence

from include.headroom.cache.access_log import sample_value
from include.headroom.exceptions import ConfigError, OriginError, TransientError
from include.headroom.resilience import RetryPolicy, retry

if TYPE_CHECKING:
    import httpx

    from include.headroom.cache.settings import OriginSettings

# A loader turns (key, expected size in bytes) into the value to cache.
Loader = Callable[[str, int], bytes]
LOADERS: dict[str, Loader] = {"sample_fleet": sample_value}


@dataclass
class Fetched:
    """Values fetched for a batch of keys, and the keys that failed with why."""

    values: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Origin(Protocol):
    name: str

    def fetch(self, entries: Sequence[tuple[str, int]]) -> Fetched: ...


class LoaderOrigin:
    """Values from a loader function registered in ``LOADERS``."""

    def __init__(self, loader: str) -> None:
        if loader not in LOADERS:
            raise ConfigError(f"origin loader {loader!r} is not registered; known loaders: {sorted(LOADERS)}")
        self.name = f"loader:{loader}"
        self._load = LOADERS[loader]

    def fetch(self, entries: Sequence[tuple[str, int]]) -> Fetched:
        out = Fetched()
        for key, size in entries:
            try:
                out.values[key] = self._load(key, size)
            except Exception as exc:  # a loader failing on one key must not stop the others; the error is recorded
                out.errors[key] = f"{type(exc).__name__}: {exc}"
        return out


class HttpOrigin:
    """``GET <url>/<key>`` with bounded concurrency; 5xx, timeouts and connection errors are retried with exponential backoff."""

    def __init__(self, url: str, timeout_s: float, retries: int, backoff_s: float, concurrency: int,
                 client: httpx.Client | None = None) -> None:
        import httpx

        self.name = f"http:{url}"
        self.url = url.rstrip("/")
        self.retries, self.backoff_s, self.concurrency = retries, backoff_s, concurrency
        self.client = client or httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency))

    def _get(self, key: str) -> bytes:
        import httpx

        def once() -> bytes:
            try:
                response = self.client.get(f"{self.url}/{key}")
            except httpx.TransportError as exc:  # timeouts, refused connections
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 500:
                raise TransientError(f"HTTP {response.status_code}")
            response.raise_for_status()
            return response.content

        return retry(once, RetryPolicy(attempts=self.retries + 1, base_delay_s=self.backoff_s), what=f"origin {self.url}/{key}",
                     exhausted=lambda n, exc: OriginError(f"origin {self.url}/{key} failed after {n} attempts: {exc}"))

    def fetch(self, entries: Sequence[tuple[str, int]]) -> Fetched:
        out = Fetched()

        def one(key: str) -> tuple[str, bytes | None, str | None]:
            try:
                return key, self._get(key), None
            except Exception as exc:  # recorded per key: a failing key must not stop the batch
                return key, None, str(exc)

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for key, value, error in pool.map(one, [k for k, _ in entries]):
                if value is not None:
                    out.values[key] = value
                else:
                    out.errors[key] = error or "unknown error"
        return out


def build_origin(settings: OriginSettings, url: str | None = None) -> Origin:
    """The origin the settings name; ``url`` (from a connection) overrides ``settings.url`` and selects HTTP."""
    if url or settings.kind == "http":
        return HttpOrigin(url or settings.url or "", settings.timeout_s, settings.retries, settings.backoff_s, settings.concurrency)
    return LoaderOrigin(settings.loader or "")
