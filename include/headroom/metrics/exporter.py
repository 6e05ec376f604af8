"""A Prometheus exporter for the sample fleet: live exposition over HTTP, and OpenMetrics history for backfilling.

Every service gets gauges (CPU percent, memory and cache-hit and pool ratios,
database query seconds, replicas), a request counter split by status code, and
a latency histogram. Within a fleet step the counters grow linearly at the
step's rate, so ``rate(...[5m])`` evaluated at the end of a step gives the
step's throughput back; the histogram spreads each step's requests over a
log-normal latency whose tier percentile is the step's ``response_time``.

Run it: ``python -m include.headroom.metrics.exporter --port 9105``.
"""

from __future__ import annotations

import argparse
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator, Sequence

from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from include.headroom.metrics.sample_fleet import SampleFleet

LATENCY_SIGMA = 0.5  # spread of the log-normal latency within a step
# Histogram bucket bounds in seconds: 1 ms to about 5 s, 25 % apart.
BUCKETS: tuple[float, ...] = tuple(round(0.001 * 1.25**k, 9) for k in range(39))
GAUGES: dict[str, tuple[str, float, str]] = {
    # exported name -> (fleet metric, factor from the fleet's unit, help)
    "headroom_cpu_utilization_percent": ("cpu_utilization", 1.0, "CPU utilization in percent"),
    "headroom_memory_utilization_ratio": ("memory_utilization", 0.01, "Memory utilization as a ratio"),
    "headroom_cache_hit_ratio": ("cache_hit_ratio", 1.0, "Cache hit ratio"),
    "headroom_database_query_seconds": ("database_performance", 0.001, "Mean database query time in seconds"),
    "headroom_connection_pool_ratio": ("connection_pool", 1.0, "Connection pool checked-out share"),
    "headroom_replicas": ("replicas", 1.0, "Running replicas"),
}


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class FleetExporter:
    """Turns the sample fleet into Prometheus series.

    :param origin: where the counters start from zero (a process start, or the start of a backfill).
    :param services: a subset of the fleet's services (default: all).
    """

    def __init__(self, fleet: SampleFleet, origin: Any, services: Sequence[str] | None = None) -> None:
        self.fleet = fleet
        self.origin = utc(origin).floor(f"{fleet.step}s")
        self.services = list(services) if services is not None else [s.name for s in fleet.config.services]
        self._quantile_z = {}
        from scipy.special import ndtri

        for name in self.services:
            svc = fleet.config.service(name)
            self._quantile_z[name] = float(ndtri(fleet.config.tier(svc.tier).latency_slo.percentile / 100.0))

    def _steps(self, end: pd.Timestamp) -> pd.DataFrame:
        """Fleet rows from the origin to the step holding ``end``, pivoted to one column per metric."""
        import pandas as pd

        frame = self.fleet.generate(self.origin, end + pd.Timedelta(seconds=self.fleet.step), services=self.services)
        return frame.pivot_table(index=["service", "ts"], columns="metric", values="value").sort_index()

    def bucket_shares(self, service: str, response_time_ms: np.ndarray) -> np.ndarray:
        """Share of a step's requests at or below each bucket bound (rows: steps, columns: buckets)."""
        import numpy as np
        from scipy.special import ndtr

        seconds = np.asarray(response_time_ms, dtype=float) / 1000.0
        median = seconds / math.exp(LATENCY_SIGMA * self._quantile_z[service])
        z = (np.log(np.asarray(BUCKETS))[None, :] - np.log(median)[:, None]) / LATENCY_SIGMA
        return ndtr(z)

    def series_at(self, times: pd.DatetimeIndex) -> Iterator[tuple[str, str, dict[str, str], np.ndarray]]:
        """``(family, sample name, labels, values at times)`` for every exported series.

        Counters at time ``t`` hold everything up to ``t``: whole earlier steps plus the
        elapsed share of the current one.
        """
        import numpy as np

        times = times.tz_convert("UTC") if times.tz is not None else times.tz_localize("UTC")
        steps = self._steps(times.max())
        step_s = float(self.fleet.step)
        for service in self.services:
            svc = self.fleet.config.service(service)
            base = {"service": service, "tier": svc.tier.value}
            rows = steps.loc[service]
            step_ts = rows.index.to_numpy(dtype="datetime64[us]").astype("int64") / 1e6
            t = times.to_numpy(dtype="datetime64[us]").astype("int64") / 1e6
            idx = np.clip(np.searchsorted(step_ts, t, side="right") - 1, 0, len(step_ts) - 1)
            elapsed = np.clip(t - step_ts[idx], 0.0, step_s)
            for name, (metric, factor, _) in GAUGES.items():
                yield name, name, base, rows[metric].to_numpy(dtype=float)[idx] * factor

            requests = rows["throughput"].to_numpy(dtype=float) * step_s
            errors = requests * rows["error_rate"].to_numpy(dtype=float)

            def cumulative(per_step: np.ndarray, idx: np.ndarray = idx, elapsed: np.ndarray = elapsed) -> np.ndarray:
                before = np.concatenate([[0.0], np.cumsum(per_step)[:-1]])
                return before[idx] + per_step[idx] * (elapsed / step_s)

            yield "http_requests", "http_requests_total", {**base, "code": "200"}, cumulative(requests - errors)
            yield "http_requests", "http_requests_total", {**base, "code": "500"}, cumulative(errors)
            shares = self.bucket_shares(service, rows["response_time"].to_numpy(dtype=float))
            for j, bound in enumerate(BUCKETS):
                yield (
                    "http_request_duration_seconds",
                    "http_request_duration_seconds_bucket",
                    {**base, "le": _le(bound)},
                    cumulative(requests * shares[:, j]),
                )
            total = cumulative(requests)
            yield "http_request_duration_seconds", "http_request_duration_seconds_bucket", {**base, "le": "+Inf"}, total
            yield "http_request_duration_seconds", "http_request_duration_seconds_count", base, total
            mean_s = (
                rows["response_time"].to_numpy(dtype=float)
                / 1000.0
                / math.exp(LATENCY_SIGMA * self._quantile_z[service])
                * math.exp(LATENCY_SIGMA**2 / 2)
            )
            yield "http_request_duration_seconds", "http_request_duration_seconds_sum", base, cumulative(requests * mean_s)

    # -- renderings ----------------------------------------------------------------------------

    def exposition(self, at: pd.Timestamp) -> str:
        """The text exposition format (what ``/metrics`` serves) at time ``at``."""
        import pandas as pd

        times = pd.DatetimeIndex([utc(at)])
        kinds = {"http_requests": "counter", "http_request_duration_seconds": "histogram"}
        by_family: dict[str, list[str]] = {}
        for family, sample, labels, values in self.series_at(times):
            by_family.setdefault(family, []).append(f"{sample}{{{_labels(labels)}}} {float(values[0])!r}")
        return "".join(f"# TYPE {family} {kinds.get(family, 'gauge')}\n" + "\n".join(lines) + "\n" for family, lines in by_family.items())

    def openmetrics(self, start: pd.Timestamp, end: pd.Timestamp, every_s: int = 60) -> Iterator[str]:
        """OpenMetrics text with timestamps for ``[start, end)`` every ``every_s`` seconds, for
        ``promtool tsdb create-blocks-from openmetrics``; yields chunks of lines ending in ``# EOF``."""
        import pandas as pd

        times = pd.date_range(utc(start), utc(end), freq=f"{every_s}s", inclusive="left")
        epoch = [f"{t.timestamp():.0f}" for t in times]
        kinds = {"http_requests": "counter", "http_request_duration_seconds": "histogram"}
        by_family: dict[str, list[tuple[str, dict[str, str], Any]]] = {}
        for family, sample, labels, values in self.series_at(times):
            by_family.setdefault(family, []).append((sample, labels, values))
        for family, series in by_family.items():
            yield f"# TYPE {family} {kinds.get(family, 'gauge')}\n"
            if kinds.get(family) == "histogram":
                # One histogram point = all its buckets, count and sum at one time, together.
                groups: dict[str, list[tuple[str, dict[str, str], Any]]] = {}
                for sample, labels, values in series:
                    groups.setdefault(labels["service"], []).append((sample, labels, values))
                for parts in groups.values():
                    rendered = [(f"{sample}{{{_labels(labels)}}} ", values) for sample, labels, values in parts]
                    yield "".join(f"{head}{float(values[i])!r} {epoch[i]}\n" for i in range(len(times)) for head, values in rendered)
            else:
                for sample, labels, values in series:
                    head = f"{sample}{{{_labels(labels)}}} "
                    yield "".join(f"{head}{float(v)!r} {e}\n" for v, e in zip(values, epoch, strict=False))
        yield "# EOF\n"


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def serve(exporter: FleetExporter, host: str = "127.0.0.1", port: int = 9105, clock: Any = None) -> ThreadingHTTPServer:
    """Start serving ``/metrics`` in a background thread; ``server.shutdown()`` stops it."""
    import pandas as pd

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            now = clock() if clock is not None else pd.Timestamp.now(tz="UTC")
            with lock:
                body = exporter.exposition(now).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep scrapes out of the console
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="fleet-exporter", daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the sample fleet on ``/metrics`` until interrupted, or write OpenMetrics history with ``--history-days``."""
    import sys

    import pandas as pd

    from include.headroom.config import get_config
    from include.headroom.metrics.sample_fleet import SampleFleet

    parser = argparse.ArgumentParser(prog="python -m include.headroom.metrics.exporter", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9105)
    parser.add_argument("--anchor", default=None, help="the fleet's anchor (default: now)")
    parser.add_argument("--history-days", type=float, default=None, help="write this much OpenMetrics history to stdout and exit")
    args = parser.parse_args(argv)
    now = pd.Timestamp.now(tz="UTC")
    fleet = SampleFleet(get_config(), anchor=args.anchor)
    if args.history_days:
        end = min(fleet.anchor, now)
        exporter = FleetExporter(fleet, origin=end - pd.Timedelta(days=args.history_days))
        for chunk in exporter.openmetrics(end - pd.Timedelta(days=args.history_days), end):
            sys.stdout.write(chunk)
        return
    server = serve(FleetExporter(fleet, origin=now - pd.Timedelta(hours=1)), args.host, args.port)
    print(f"serving the sample fleet on http://{args.host}:{args.port}/metrics", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
