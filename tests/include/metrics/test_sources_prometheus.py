"""Prometheus source against a real Prometheus server holding the shipped exporter's history (and scraping it live)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest

from include.headroom.exceptions import DataError, SourceError
from include.headroom.metrics.exporter import FleetExporter, serve
from include.headroom.metrics.prometheus import PrometheusSource, chunk_grid
from include.headroom.metrics.source_config import PromQuery, load_source_settings
from include.headroom.metrics.units import normalize_units
from include.headroom.steps.ingest import ingest
from tests.servers import PrometheusServer, free_port

SERVICES = ["checkout-api", "blog-frontend"]  # an enterprise (p99) and a basic (p90) service
HISTORY_H = 6


@pytest.fixture(scope="module")
def prometheus(fleet, tmp_path_factory):
    """Prometheus with six hours of backfilled history up to the fleet anchor, scraping the exporter live."""
    end = fleet.anchor
    history = FleetExporter(fleet, origin=end - pd.Timedelta(hours=HISTORY_H + 1), services=SERVICES)
    live_at = end - pd.Timedelta(minutes=42)
    exporter = serve(FleetExporter(fleet, origin=end - pd.Timedelta(hours=2), services=SERVICES), port=free_port(), clock=lambda: live_at)
    server = PrometheusServer(tmp_path_factory.mktemp("prom"), scrape_targets=[f"127.0.0.1:{exporter.server_port}"])
    server.backfill(history.openmetrics(end - pd.Timedelta(hours=HISTORY_H), end))
    server.start()
    server.live_at = live_at
    yield server
    server.stop()
    exporter.shutdown()
    exporter.server_close()


@pytest.fixture(scope="module")
def settings():
    return load_source_settings().prometheus


def _source(prometheus, config, settings, **changes):
    return PrometheusSource(prometheus.url, dataclasses.replace(settings, **changes), config, services=SERVICES, sleep=lambda s: None)


def _window(fleet, hours_before_end=(4, 1)):
    return fleet.anchor - pd.Timedelta(hours=hours_before_end[0]), fleet.anchor - pd.Timedelta(hours=hours_before_end[1])


def _seed_watermark(store, config, start):
    """A watermark one lookback after ``start``, so ingest reads exactly from ``start``."""
    mark = start + pd.Timedelta(seconds=config.pipeline.lookback_s)
    store.upsert("watermarks", pd.DataFrame([{"source": "source:prometheus", "watermark": mark, "updated_at": mark}]))


def _compare(read: pd.DataFrame, expected: pd.DataFrame, metric: str) -> pd.DataFrame:
    got = read[read["metric"] == metric].set_index(["service", "ts"])["value"]
    want = expected[expected["metric"] == metric].set_index(["service", "ts"])["value"]
    joined = pd.concat({"got": got, "want": want}, axis=1)
    assert joined.notna().all().all(), f"{metric}: series differ in timestamps:\n{joined[joined.isna().any(axis=1)].head()}"
    return joined


def test_values_read_back_match_what_the_exporter_served(prometheus, fleet, config, settings, caplog):
    start, end = _window(fleet)
    source = _source(prometheus, config, settings)
    with caplog.at_level("INFO", logger="include.headroom.metrics.prometheus"):
        read = normalize_units(source.read(start, end), load_source_settings().units, "prometheus")
    assert "Prometheus: series 18/18 done, 648 points" in caplog.text  # progress: series done / total, points, rate
    expected = fleet.generate(start, end, services=SERVICES)
    assert len(read) == len(expected) == 2 * 9 * 36
    # Gauges come back exactly, converted to the canonical unit (ratio -> percent, seconds -> ms).
    for metric in ("cpu_utilization", "memory_utilization", "cache_hit_ratio", "database_performance", "connection_pool", "replicas"):
        joined = _compare(read, expected, metric)
        np.testing.assert_allclose(joined["got"], joined["want"], rtol=1e-9, err_msg=metric)
    # Counters: rate()[5m] at the end of a fleet step is that step's throughput and error share.
    for metric in ("throughput", "error_rate"):
        joined = _compare(read, expected, metric)
        np.testing.assert_allclose(joined["got"], joined["want"], rtol=1e-6, err_msg=metric)
    # The latency histogram's tier percentile comes back within a bucket's width (buckets 25 % apart).
    joined = _compare(read, expected, "response_time")
    assert ((joined["got"] / joined["want"] - 1).abs() < 0.1).all(), joined.assign(r=joined["got"] / joined["want"]).describe()
    units = read.drop_duplicates("metric").set_index("metric")
    assert units.loc["memory_utilization", ["unit", "original_unit"]].tolist() == ["percent", "ratio"]
    assert units.loc["response_time", ["unit", "original_unit"]].tolist() == ["ms", "s"]
    labels = read[read["metric"] == "response_time"].drop_duplicates("service").set_index("service")["labels"]
    assert labels.to_dict() == {"checkout-api": "quantile=p99", "blog-frontend": "quantile=p90"}


def test_chunks_respect_the_points_limit_and_give_the_same_rows(prometheus, fleet, config, settings):
    start, end = _window(fleet)
    assert [(a.isoformat(), b.isoformat()) for a, b in chunk_grid(start, start + pd.Timedelta(minutes=50), 300, 4)] == [
        ("2026-10-31T20:00:00+00:00", "2026-10-31T20:15:00+00:00"),
        ("2026-10-31T20:20:00+00:00", "2026-10-31T20:35:00+00:00"),
        ("2026-10-31T20:40:00+00:00", "2026-10-31T20:45:00+00:00"),
    ]
    whole = _source(prometheus, config, settings).read(start, end)
    chunked_source = _source(prometheus, config, settings, max_points_per_series=5)
    calls = []
    original = chunked_source.session.get
    chunked_source.session.get = lambda *a, **k: calls.append(k["params"]) or original(*a, **k)
    chunked = chunked_source.read(start, end)
    pd.testing.assert_frame_equal(
        whole.sort_values(["service", "metric", "ts"]).reset_index(drop=True),
        chunked.sort_values(["service", "metric", "ts"]).reset_index(drop=True),
    )
    assert len(calls) == 2 * 9 * 8  # 36 points per series in chunks of at most 5
    assert max((c["end"] - c["start"]) / c["step"] + 1 for c in calls) == 5


def test_live_scrape_of_the_exporter(prometheus, fleet, config, settings):
    source = _source(prometheus, config, settings)
    expected = fleet.generate(
        prometheus.live_at.floor("5min"), prometheus.live_at.floor("5min") + pd.Timedelta(minutes=5), services=SERVICES
    )
    want = expected[(expected["metric"] == "cpu_utilization") & (expected["service"] == "checkout-api")]["value"].iloc[0]
    deadline = time.monotonic() + 20
    result = []
    while time.monotonic() < deadline and not result:
        result = source.instant('headroom_cpu_utilization_percent{service="checkout-api",job="fleet"}')
        time.sleep(0.5)
    assert result, "Prometheus never scraped the exporter"
    assert float(result[0]["value"][1]) == pytest.approx(want, rel=1e-9)


def test_a_bad_query_fails_with_prometheus_own_error_naming_query_and_service(prometheus, fleet, config, settings):
    bad = PromQuery(metric="throughput", promql='sum(rate(http_requests_total{service="$service"}[5m])', unit="req/s")
    with pytest.raises(
        SourceError,
        match=r"refused query 'sum\(rate\(http_requests_total\{service=\"checkout-api\"\}\[5m\]\)' "
        r"\(metric 'throughput', service 'checkout-api'.*bad_data: .*parse error",
    ):
        _source(prometheus, config, settings, queries=(bad,)).read(*_window(fleet))


def test_an_empty_result_is_reported_not_invented(prometheus, fleet, config, settings):
    queries = (PromQuery(metric="queue_length", promql='max(no_such_metric{service="$service"})', unit="count"), settings.queries[-1])
    source = _source(prometheus, config, settings, queries=queries)
    rows = source.read(*_window(fleet))
    assert sorted(rows["metric"].unique()) == ["replicas"]
    assert source.stats["empty"] == ["queue_length of checkout-api", "queue_length of blog-frontend"]


def test_nan_and_infinite_samples_are_kept_for_validation(prometheus, fleet, config, settings, store):
    queries = (
        PromQuery(metric="replicas", promql='headroom_replicas{service="$service"} / 0', unit="count"),
        PromQuery(
            metric="queue_length",
            promql='(headroom_replicas{service="$service"} - headroom_replicas{service="$service"}) / 0',
            unit="count",
        ),
    )
    source = _source(prometheus, config, settings, queries=queries)
    start, end = _window(fleet, (2, 1))
    _seed_watermark(store, config, start)
    result = ingest(store, config, source, start, end).to_xcom()
    staged = store.query("SELECT metric, value FROM staging")
    assert result["rows"] == len(staged) == 2 * 2 * 12
    assert np.isposinf(staged.loc[staged["metric"] == "replicas", "value"]).all()
    assert staged.loc[staged["metric"] == "queue_length", "value"].isna().all()
    assert result["non_finite"] == [
        "replicas of checkout-api: 12",
        "replicas of blog-frontend: 12",
        "queue_length of checkout-api: 12",
        "queue_length of blog-frontend: 12",
    ]


def test_unreachable_prometheus_retries_then_fails_and_keeps_the_watermark(fleet, config, settings, store):
    start, end = _window(fleet, (2, 1))
    good = PrometheusSource("http://127.0.0.1:1", settings, config, services=SERVICES, sleep=lambda s: None)
    store.upsert("watermarks", pd.DataFrame([{"source": "source:prometheus", "watermark": start, "updated_at": start}]))
    with pytest.raises(SourceError, match=r"prometheus at http://127.0.0.1:1 unreachable for query .* after 4 attempts: ConnectionError"):
        ingest(store, config, good, start, end)
    assert store.read("watermarks")["watermark"].tolist() == [start]
    assert store.count("staging") == 0 and store.count("batches") == 0


def test_a_unit_that_cannot_be_converted_fails_before_writing(prometheus, fleet, config, settings, store):
    queries = (PromQuery(metric="cpu_utilization", promql='max(headroom_cpu_utilization_percent{service="$service"})', unit="bytes"),)
    with pytest.raises(
        DataError,
        match=r"source 'prometheus', series 'cpu_utilization' of \['blog-frontend', 'checkout-api'\]: "
        r"field 'unit': unit 'bytes' \(bytes\) cannot be converted to 'percent' \(fraction\)",
    ):
        ingest(store, config, _source(prometheus, config, settings, queries=queries), *_window(fleet, (2, 1)))
    assert store.count("staging") == 0 and store.read("watermarks").empty


def test_ingest_twice_stages_the_same_batch_and_records_units(prometheus, fleet, config, settings, store):
    source = _source(prometheus, config, settings)
    start, end = _window(fleet, (2, 1))
    _seed_watermark(store, config, start)
    first = ingest(store, config, source, start, end).to_xcom()
    staged = store.query("SELECT * FROM staging ORDER BY service, metric, ts")
    second = ingest(store, config, source, start, end).to_xcom()
    assert first["batch_id"] == second["batch_id"] and first["rows"] == second["rows"] == 2 * 9 * 12
    pd.testing.assert_frame_equal(staged, store.query("SELECT * FROM staging ORDER BY service, metric, ts"))
    units = store.read("source_units", metric="database_performance")
    assert units[["service", "original_unit", "unit", "factor"]].values.tolist() == [
        ["blog-frontend", "s", "ms", 1000.0],
        ["checkout-api", "s", "ms", 1000.0],
    ]
    # Once validated into metrics, re-staging the interval finds nothing new.
    store.upsert("metrics", staged)
    assert ingest(store, config, source, start, end).new_rows == 0


@pytest.fixture
def flaky_proxy(prometheus):
    """An HTTP proxy in front of the real Prometheus that answers the first requests 503 and 429, as an overloaded
    server or a rate-limiting gateway does, then forwards."""
    import http.server
    import threading
    import urllib.request

    failures = [(503, b"service unavailable"), (429, b"too many requests")]
    seen: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if failures:
                status, body = failures.pop(0)
                seen.append(status)
                self.send_response(status)
                if status == 429:  # the gateway says when to come back; the 503 leaves it to the client's backoff
                    self.send_header("Retry-After", "2")
            else:
                with urllib.request.urlopen(prometheus.url + self.path, timeout=10) as upstream:
                    body, status = upstream.read(), upstream.status
                seen.append(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url, server.seen = f"http://127.0.0.1:{server.server_port}", seen
    yield server
    server.shutdown()
    server.server_close()


def test_5xx_and_429_are_retried_with_backoff_then_read(flaky_proxy, prometheus, fleet, config, settings):
    start, end = _window(fleet)
    slept = []
    source = PrometheusSource(
        flaky_proxy.url, dataclasses.replace(settings, retries=3, backoff_s=0.5), config, services=SERVICES[:1], sleep=slept.append
    )
    read = source.read(start, end)
    direct = _source(prometheus, config, settings).read(start, end)
    want = direct[direct["service"] == SERVICES[0]]
    assert flaky_proxy.seen[:3] == [503, 429, 200]
    assert slept == [0.5, 2.0]  # exponential backoff after the 503 (0.5 s), then the 429's Retry-After (2 s) wins over 1 s
    pd.testing.assert_frame_equal(
        read.sort_values(["metric", "ts"]).reset_index(drop=True)[list(want.columns)],
        want.sort_values(["metric", "ts"]).reset_index(drop=True),
    )


@pytest.fixture
def echoing_gateway():
    """A gateway in front of Prometheus that, like some misconfigured proxies, echoes the request headers in its error
    replies: first a 502 (retried), then a 400 that is not a Prometheus API answer."""
    import http.server
    import threading

    replies = [502, 400]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status = replies.pop(0) if replies else 400
            body = f"bad gateway; request was GET {self.path}\r\n{self.headers}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_reply_echoing_the_credentials_is_redacted_in_the_error_and_the_log(echoing_gateway, config, settings, caplog):
    import base64

    import requests

    session = requests.Session()
    session.auth = ("headroom", "hunter2-prom")
    slept = []
    source = PrometheusSource(
        echoing_gateway, dataclasses.replace(settings, retries=2, backoff_s=0.25), config, session=session, sleep=slept.append
    )
    with caplog.at_level("WARNING"), pytest.raises(SourceError, match=r"not a Prometheus API answer: .*Authorization: \*\*\*") as info:
        source.build_info()
    secret = base64.b64encode(b"headroom:hunter2-prom").decode()
    assert slept == [0.25]  # the 502 was retried once
    assert secret not in str(info.value) and "hunter2" not in str(info.value)
    assert "HTTP 502" in caplog.text and secret not in caplog.text and "Authorization: ***" in caplog.text
