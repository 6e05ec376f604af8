"""One HTTP client for every REST/OData connector: quota, retries with backoff, Retry-After, breaker, call figures.

The connector code above it is the code that talks to the real service; only ``base_url`` differs in tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.headroom.connectors.resilience import DailyBudget
from include.headroom.exceptions import AuthenticationError, ConnectorError, TransientError
from include.headroom.redact import redact as redact_text
from include.headroom.resilience import CircuitBreaker, RetryPolicy, StateFile, TokenBucket, retry

if TYPE_CHECKING:
    import requests

    from include.headroom.connectors.settings import ConnectorSettings


@dataclass(frozen=True)
class Credentials:
    """What an Airflow connection holds for a connector; the secrets never appear in ``repr``."""

    base_url: str = ""
    login: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def secrets(self) -> tuple[str, ...]:
        values = [self.password, self.token, *(str(v) for k, v in self.extra.items() if "secret" in k or "token" in k or "key" in k)]
        return tuple(v for v in values if v and len(v) >= 4)


@dataclass
class CallStats:
    """API figures of one sync: every call counts, throttled calls (429) and retries separately."""

    calls: int = 0
    throttles: int = 0
    retries: int = 0
    breaker_trips: int = 0
    throttled_s: float = 0.0
    backoff_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_lock", None)
        return d


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with the connection's own ``secrets`` and any other credential in it masked."""
    return redact_text(text, secrets)


def _error_text(response: requests.Response) -> str:
    """The remote's own error message from the usual error bodies (Salesforce, HubSpot, ServiceNow, OData)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict):  # Salesforce: [{"errorCode", "message"}]
        return "; ".join(f"{e.get('errorCode', '')}: {e.get('message', '')}" for e in body[:3])
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # OData {"error": {"code", "message"}}, ServiceNow {"error": {"message", "detail"}}
            return ": ".join(str(err[k]) for k in ("code", "message", "detail") if err.get(k))
        if "message" in body:  # HubSpot {"status": "error", "category", "message"}
            return f"{body.get('category', body.get('errorType', ''))}: {body['message']}".strip(": ")
        if "error_description" in body or "error" in body:  # OAuth2
            return f"{body.get('error', '')}: {body.get('error_description', '')}"
    return str(body)[:300]


class ApiClient:
    """``requests`` session of one connector: every call waits for a quota token, spends the daily budget,
    passes the circuit breaker, and is retried with exponential backoff and jitter on 429, 5xx and timeouts
    (a ``Retry-After`` header wins over the computed delay).

    :param authenticate: sets the session's auth (headers, instance URL); called before the first call
        and once more after a 401, then a second 401 raises :class:`AuthenticationError`.
    """

    RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self,
        settings: ConnectorSettings,
        credentials: Credentials,
        state_dir: str | Path,
        authenticate: Callable[[ApiClient], None] | None = None,
        rate_limited: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.settings, self.credentials, self.base_url = settings, credentials, credentials.base_url.rstrip("/")
        self.name = settings.name
        self.session = requests.Session()
        pool = settings.options.get("http_pool") or [max(1, settings.concurrency), max(10, settings.concurrency)]
        adapter = HTTPAdapter(pool_connections=int(pool[0]), pool_maxsize=int(pool[-1]), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        q = settings.quota
        self.bucket = TokenBucket(rate=q.rate, capacity=q.burst, sleep=sleep) if rate_limited else None
        self._bucket_lock = threading.Lock()
        state = StateFile(Path(state_dir) / f"{settings.name}.json")
        self.breaker = CircuitBreaker(settings.name, state, settings.breaker.failure_threshold, settings.breaker.cooldown_s)
        self.budget = DailyBudget(settings.name, state, q.daily_calls)
        self.stats = CallStats()
        self._authenticate = authenticate
        self._authenticated = False
        self._sleep, self._rng = sleep, rng or random.Random()

    # -- helpers for connectors ------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith(("http://", "https://")) else f"{self.base_url}{path_or_url}"

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ConnectorError(
                f"connector {self.name!r}: {method} {path} answered HTTP {response.status_code} with a body that is not JSON: "
                f"{self._safe(response.text)[:200]!r}"
            ) from None

    def _safe(self, text: str) -> str:
        return redact(text, self.credentials.secrets())

    # -- the call ---------------------------------------------------------------------------------

    def _acquire(self) -> None:
        if self.bucket is None:
            return
        with self._bucket_lock:
            before = self.bucket.waited_s
            self.bucket.acquire()
            self.stats.add(throttled_s=self.bucket.waited_s - before)

    def request(self, method: str, path: str, *, authenticated: bool = True, **kwargs: Any) -> requests.Response:
        """One API call with quota, breaker and retries.

        :raises AuthenticationError: on 401/403 after one re-authentication (the message never holds a secret).
        :raises ConnectorError: on another 4xx at once, or on 429/5xx/timeouts once ``max_attempts`` are spent.
        :raises CircuitOpenError: when the breaker is open; :raises QuotaExhaustedError: when the daily budget is spent.
        """
        import requests

        if authenticated and not self._authenticated and self._authenticate is not None:
            self._authenticate(self)
            self._authenticated = True
        settings = self.settings.retry
        where = f"connector {self.name!r}: {method} {path.split('?')[0] if path.startswith('http') else path}"
        policy = RetryPolicy(
            attempts=settings.max_attempts, base_delay_s=settings.base_delay_s, max_delay_s=settings.max_delay_s, jitter=settings.jitter
        )
        reauthed = False

        def send() -> requests.Response:
            self.breaker.before_call()
            self.budget.spend()
            self._acquire()
            self.stats.add(calls=1)
            return self.session.request(method, self.url(path), timeout=settings.timeout_s, **kwargs)

        def once() -> requests.Response:
            nonlocal reauthed
            try:
                response = send()
                if response.status_code == 401 and authenticated and self._authenticate is not None and not reauthed:
                    self.breaker.record_success()  # the remote is up; the token expired: authenticate once more
                    reauthed = True
                    self._authenticate(self)
                    response = send()
            except (requests.Timeout, requests.ConnectionError) as exc:
                if self.breaker.record_failure():
                    self.stats.add(breaker_trips=1)
                raise TransientError(type(exc).__name__) from exc
            status = response.status_code
            if status < 400:
                self.breaker.record_success()
                return response
            text = self._safe(_error_text(response))
            if status in (401, 403) or (not authenticated and status == 400):  # OAuth: 400 invalid_client / invalid_grant
                self.breaker.record_success()  # the remote is up; the credentials are wrong
                raise AuthenticationError(
                    f"{where} was refused (HTTP {status}: {text}); check the credentials of Airflow connection {self.settings.conn_id!r}"
                )
            if status not in self.RETRY_STATUS:
                self.breaker.record_success()
                raise ConnectorError(f"{where} failed with HTTP {status}: {text}")
            if status == 429:
                self.stats.add(throttles=1)
                raise TransientError(f"HTTP {status}: {text}", retry_after=response.headers.get("Retry-After"))
            if self.breaker.record_failure():
                self.stats.add(breaker_trips=1)
            raise TransientError(f"HTTP {status}: {text}")

        return retry(
            once,
            policy,
            what=where,
            sleep=self._sleep,
            rng=self._rng,
            on_retry=lambda _n, _exc, delay: self.stats.add(retries=1, backoff_s=delay),
            exhausted=lambda attempts, exc: ConnectorError(f"{where} failed after {attempts} attempts; last: {exc}"),
        )
