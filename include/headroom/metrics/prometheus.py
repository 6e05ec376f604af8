"""Prometheus as a metrics source: PromQL templates per service read through ``/api/v1/query_range`` in chunks."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Iterator, Sequence

from include.headroom.exceptions import SourceError, TransientError
from include.headroom.metrics.schema import format_labels
from include.headroom.redact import redact
from include.headroom.resilience import RetryPolicy, retry
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd
    import requests

    from include.headroom.config import HeadroomConfig
    from include.headroom.catalog import Service
    from include.headroom.metrics.source_config import PrometheusSettings, PromQuery

log = logging.getLogger(__name__)
SOURCE_NAME = "prometheus"
COLUMNS = ["ts", "service", "tier", "metric", "value", "unit", "source", "labels"]


def _reply(text: str, limit: int = 300) -> str:
    """The start of a server's reply, fit for an error message: credentials it echoes are masked first."""
    return redact(text)[:limit]


def template_vars(config: HeadroomConfig, service: Service) -> dict[str, str]:
    """What ``$name`` placeholders in source templates stand for, for one service."""
    percentile = config.tier(service.tier).latency_slo.percentile
    return {"service": service.name, "tier": service.tier.value, "percentile": str(percentile), "quantile": f"{percentile / 100:g}"}


@dataclass(frozen=True)
class SeriesRequest:
    """One PromQL query for one service (or for every service, when the query is not templated)."""

    query: PromQuery
    promql: str
    service: Service | None
    labels: str


def chunk_grid(start: pd.Timestamp, end: pd.Timestamp, step_s: int, max_points: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Inclusive ``(first, last)`` evaluation times on the ``step_s`` grid inside ``[start, end)``, at most ``max_points`` each."""
    import pandas as pd

    first = math.ceil(start.timestamp() / step_s) * step_s
    last = math.ceil(end.timestamp() / step_s) * step_s - step_s
    chunks = []
    while first <= last:
        stop = min(first + (max_points - 1) * step_s, last)
        chunks.append((pd.Timestamp(first, unit="s", tz="UTC"), pd.Timestamp(stop, unit="s", tz="UTC")))
        first = stop + step_s
    return chunks


class PrometheusSource:
    """Reads canonical rows from a Prometheus server.

    :param base_url: e.g. ``http://127.0.0.1:9090``.
    :param session: a ``requests.Session`` (the hook passes one carrying the connection's auth and headers).
    :param services: the catalog services to read templated queries for (default: all).
    """

    name = SOURCE_NAME

    def __init__(
        self,
        base_url: str,
        settings: PrometheusSettings,
        config: HeadroomConfig,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        services: Sequence[str] | None = None,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.config = config
        self.services = [config.service(n) for n in services] if services is not None else list(config.services)
        self.session = session or requests.Session()
        self._sleep = sleep
        self.stats: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"PrometheusSource(base_url={self.base_url!r})"

    # -- HTTP ----------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any], what: str) -> Any:
        """GET an API path; retry timeouts, refused connections and 5xx; translate Prometheus' own errors."""
        import requests

        url = f"{self.base_url}{path}"

        def once() -> Any:
            try:
                resp = self.session.get(url, params=params, timeout=self.settings.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise TransientError(f"{type(exc).__name__}: {redact(str(exc))}") from exc
            if resp.status_code >= 500 or resp.status_code == 429:
                raise TransientError(f"HTTP {resp.status_code}: {_reply(resp.text)}", retry_after=resp.headers.get("Retry-After"))
            try:
                body = resp.json()
            except ValueError:
                raise SourceError(
                    f"prometheus at {self.base_url}: {what}: HTTP {resp.status_code}, not a Prometheus API answer: {_reply(resp.text)!r}"
                ) from None
            if body.get("status") != "success":
                raise SourceError(
                    f"prometheus at {self.base_url} refused {what}: {body.get('errorType', 'error')}: "
                    f"{_reply(str(body.get('error', resp.text)))}"
                )
            return body["data"]

        policy = RetryPolicy(attempts=self.settings.retries, base_delay_s=self.settings.backoff_s, max_delay_s=30.0)
        return retry(
            once,
            policy,
            what=f"prometheus {what}",
            sleep=self._sleep,
            on_retry=lambda n, exc, delay: log.warning(
                "Prometheus %s failed (%s); retry %d of %d in %.1f s", what, exc, n + 1, self.settings.retries - 1, delay
            ),
            exhausted=lambda n, exc: SourceError(f"prometheus at {self.base_url} unreachable for {what} after {n} attempts: {exc}"),
        )

    def build_info(self) -> dict[str, Any]:
        """The server's version information (a cheap reachability check)."""
        return self._get("/api/v1/status/buildinfo", {}, "buildinfo")

    def instant(self, promql: str, at: pd.Timestamp | None = None) -> list[dict[str, Any]]:
        """``/api/v1/query``: the vector ``promql`` evaluates to at ``at`` (default now)."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = utc(at).timestamp()
        return self._get("/api/v1/query", params, f"query {promql!r}")["result"]

    # -- reading -------------------------------------------------------------------------------

    def requests(self) -> list[SeriesRequest]:
        """Every (query, service) pair the configuration asks for."""
        out = []
        for query in self.settings.queries:
            if query.per_service:
                for svc in self.services:
                    env = template_vars(self.config, svc)
                    labels = {k: Template(v).safe_substitute(env) for k, v in query.labels.items()}
                    out.append(SeriesRequest(query, Template(query.promql).safe_substitute(env), svc, format_labels(labels)))
            else:
                out.append(SeriesRequest(query, query.promql, None, format_labels(query.labels)))
        return out

    def _series_frames(
        self, req: SeriesRequest, result: list[dict[str, Any]], seen: dict[tuple[str, str], dict[str, str]]
    ) -> Iterator[pd.DataFrame]:
        """One frame (``ts`` in epoch seconds, ``value``, ``service``, ``tier``, ``labels``) per returned series."""
        import numpy as np
        import pandas as pd

        services = {s.name: s for s in self.config.services}
        for series in result:
            metric_labels = series.get("metric", {})
            if req.service is not None:
                svc_name, tier = req.service.name, req.service.tier.value
            else:
                svc_name = metric_labels.get(req.query.service_label, "")
                if not svc_name:
                    raise SourceError(
                        f"prometheus query {req.promql!r} for metric {req.query.metric!r}: a series has no "
                        f"{req.query.service_label!r} label to name its service: {metric_labels}"
                    )
                tier = services[svc_name].tier.value if svc_name in services else ""
            extra = {k: metric_labels[k] for k in req.query.keep_labels if k in metric_labels}
            labels = ",".join(p for p in (req.labels, format_labels(extra)) if p)
            if seen.get((svc_name, labels), metric_labels) != metric_labels:
                raise SourceError(
                    f"prometheus query {req.promql!r} for service {svc_name!r}, metric {req.query.metric!r} returned several series "
                    f"with the same labels ({seen[(svc_name, labels)]} and {metric_labels}): aggregate them or list labels in keep_labels"
                )
            seen[(svc_name, labels)] = metric_labels
            points = series.get("values", [])
            if not points:
                continue
            # Prometheus sends values as strings: "1.5", "NaN", "+Inf"; numpy parses all of them.
            pairs = np.asarray(points, dtype=object)
            yield pd.DataFrame(
                {
                    "ts": pairs[:, 0].astype(float),
                    "value": pairs[:, 1].astype(str).astype(float),
                    "service": svc_name,
                    "tier": tier,
                    "labels": labels,
                }
            )

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Canonical rows with ``start <= ts < end`` for every configured query and service.

        NaN and infinite samples are kept (validation quarantines them, saying why); a query
        that matches nothing is logged and reported in ``stats["empty"]``.

        :raises SourceError: naming the query and service when Prometheus refuses a query or stays unreachable.
        """
        import numpy as np
        import pandas as pd

        start, end = utc(start), utc(end)
        reqs = self.requests()
        frames, empty, non_finite = [], [], []
        points = 0
        started = time.monotonic()
        for done, req in enumerate(reqs, 1):
            shift = pd.Timedelta(seconds=req.query.shift_s)
            parts: list[pd.DataFrame] = []
            seen: dict[tuple[str, str], dict[str, str]] = {}
            for first, last in chunk_grid(start - shift, end - shift, self.settings.step_s, self.settings.max_points_per_series):
                who = f"service {req.service.name!r}" if req.service else "every service"
                what = f"query {req.promql!r} (metric {req.query.metric!r}, {who}, {first.isoformat()}..{last.isoformat()})"
                data = self._get(
                    "/api/v1/query_range",
                    {"query": req.promql, "start": first.timestamp(), "end": last.timestamp(), "step": self.settings.step_s},
                    what,
                )
                parts.extend(self._series_frames(req, data.get("result", []), seen))
            if not parts:
                empty.append(f"{req.query.metric} of {req.service.name if req.service else '*'}")
                log.warning(
                    "Prometheus query %r (metric %s, service %s) matched no series in [%s, %s)",
                    req.promql,
                    req.query.metric,
                    req.service.name if req.service else "*",
                    start,
                    end,
                )
                continue
            frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True) + shift
            frame = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
            bad = ~np.isfinite(frame["value"].to_numpy(dtype=float))
            if bad.any():
                non_finite.append(f"{req.query.metric} of {req.service.name if req.service else '*'}: {int(bad.sum())}")
                log.warning(
                    "Prometheus query %r (metric %s, service %s) returned %d NaN/Inf samples, kept for validation to quarantine",
                    req.promql,
                    req.query.metric,
                    req.service.name if req.service else "*",
                    int(bad.sum()),
                )
            frames.append(frame.assign(metric=req.query.metric, unit=req.query.unit, source=SOURCE_NAME))
            points += len(frame)
            elapsed = max(time.monotonic() - started, 1e-9)
            log.info("Prometheus: series %d/%d done, %d points, %.0f points/s", done, len(reqs), points, points / elapsed)
        self.stats = {
            "series": len(reqs),
            "points": points,
            "empty": empty,
            "non_finite": non_finite,
            "seconds": round(time.monotonic() - started, 3),
        }
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        return pd.concat(frames, ignore_index=True)[COLUMNS]
