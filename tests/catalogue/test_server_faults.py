"""The catalogue's server cases: real faults against real servers (Prometheus, PostgreSQL, Redis, moto) or, where a
server must misbehave in a way the real one does not (echoing credentials in a 401), a local HTTP server driven
through the real hook and source."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from catalogue_cases import NOW, SERVER_CASES, csv, rows
from catalogue_runner import check_batch, error_class

from include.headroom.metrics.source_config import PromQuery, load_source_settings
from tests.servers import PrometheusServer, RedisServer, free_port

CASE = {c.id: c for c in SERVER_CASES}
START, END = pd.Timestamp("2026-12-04T22:00Z"), pd.Timestamp("2026-12-04T23:00Z")


def _raises(case_id: str):
    expected = CASE[case_id].expected
    return pytest.raises(error_class(expected.error), match=expected.match)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("catalogue-prom")).start()
    yield server
    server.stop()


def test_prometheus_unreachable(config):
    from include.headroom.metrics.prometheus import PrometheusSource

    settings = dataclasses.replace(load_source_settings().prometheus, retries=1)
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", settings, config, services=["orders-api"], sleep=lambda s: None)
    with _raises("prometheus_unreachable"):
        source.read(START, END)


def test_prometheus_bad_promql(prometheus, config):
    from include.headroom.metrics.prometheus import PrometheusSource

    bad = PromQuery(metric="throughput", promql='sum(rate(http_requests_total{service="$service"}[5m]', unit="req/s")
    settings = dataclasses.replace(load_source_settings().prometheus, retries=1, queries=(bad,))
    source = PrometheusSource(prometheus.url, settings, config, services=["orders-api"], sleep=lambda s: None)
    with _raises("prometheus_bad_promql"):
        source.read(START, END)


class _EchoingProxy(BaseHTTPRequestHandler):
    """A proxy that refuses every request with 401 and echoes the request headers back, credentials included."""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = ("401 Unauthorized\nrequest headers:\n" + "".join(f"{k}: {v}\n" for k, v in self.headers.items())).encode()
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_proxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("case_id", "conn_extra"),
    [
        ("prometheus_401_basic_echo", {"login": "capacity-bot", "password": "Tr0ub4dor&3-secret"}),
        ("prometheus_401_bearer_echo", {"extra": json.dumps({"bearer_token": "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig-9f8e7d"})}),
    ],
)
def test_prometheus_401_echoing_credentials_is_redacted(case_id, conn_extra, echoing_proxy, monkeypatch, config):
    from headroom_provider.hooks.prometheus import PrometheusHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMETHEUS_CATALOGUE", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": echoing_proxy, **conn_extra})
    )
    settings = dataclasses.replace(load_source_settings().prometheus, retries=1)
    source = PrometheusHook(prometheus_conn_id="prometheus_catalogue").get_source(config, settings)
    source.services = [config.service("orders-api")]
    with _raises(case_id) as caught:
        source.read(START, END)
    text = f"{caught.value}\n{caught.value!r}\n{caught.value.__cause__ or ''}"
    assert "Authorization" in text  # the header is named (the reader learns the proxy echoed it) ...
    secrets = [
        "Tr0ub4dor&3-secret",
        "capacity-bot:Tr0ub4dor",
        base64.b64encode(b"capacity-bot:Tr0ub4dor&3-secret").decode(),
        "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig-9f8e7d",
        "c2VjcmV0LXRva2Vu",
    ]
    assert not [s for s in secrets if s in text], text  # ... but no credential in any form


def test_postgres_unreachable(monkeypatch):
    from include.headroom.store import open_store

    monkeypatch.setenv(
        "HEADROOM_POSTGRES_DSN", f"host=127.0.0.1 port={free_port()} user=headroom password=pg-S3cret-77 dbname=x connect_timeout=2"
    )
    with _raises("postgres_unreachable") as caught:
        open_store(backend="postgres").query("SELECT 1 AS one")
    assert "pg-S3cret-77" not in f"{caught.value}{caught.value!r}"


def test_postgres_ingest_file(postgres_server, tmp_path, catalogue_config):
    import psycopg

    from include.headroom.ingest_file import ingest_file
    from include.headroom.store import PostgresStore

    store = PostgresStore(lambda: psycopg.connect(postgres_server.dsn), schema="catalogue_ingest")
    lines = rows()
    path = tmp_path / "m.csv"
    path.write_text(csv(lines + lines[:2] + ["2026-12-05T06:00:00Z,orders-api,cpu_utilization,41,percent"]))
    try:
        outcome = ingest_file([path], catalogue_config, store=store, now=NOW)
        check_batch(CASE["postgres_ingest_file"].expected, outcome, store)
    finally:
        store.drop_schema()


@pytest.fixture
def s3(moto_server, monkeypatch):
    extra = json.loads(moto_server.aws_conn())
    extra["extra"]["config_kwargs"] = {"retries": {"total_max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(extra))
    from headroom_provider.hooks.files import MetricsFilesHook

    hook = MetricsFilesHook()
    if "catalogue-in" not in [b["Name"] for b in hook.s3.get_conn().list_buckets()["Buckets"]]:
        hook.s3.create_bucket("catalogue-in")
    return hook


def test_s3_missing_object(s3, config):
    settings = dataclasses.replace(load_source_settings().files, paths=("s3://catalogue-in/missing.csv",))
    with _raises("s3_missing_object"):
        s3.get_source(config, settings).read(START, END)


def test_s3_bad_row(s3, config):
    lines = rows()
    lines[1] = lines[1].replace(",41,", ",oops,")
    s3.s3.load_string(csv(lines), key="bad.csv", bucket_name="catalogue-in", replace=True)
    settings = dataclasses.replace(load_source_settings().files, paths=("s3://catalogue-in/bad.csv",))
    with _raises("s3_bad_row"):
        s3.get_source(config, settings).read(START, END)


def _warm(client, config):
    from include.headroom.cache.origin import LoaderOrigin
    from include.headroom.cache.redis_warmer import WarmStatus, warm_redis
    from include.headroom.cache.settings import load_cache_settings

    settings = load_cache_settings()
    entries = [[f"catalogue:key:{i}", 512, 600] for i in range(20)]
    result = warm_redis(client, entries, LoaderOrigin("sample_fleet"), settings.redis, settings.warming, sleep=lambda s: None)
    assert (result.status, result.warmed) == (WarmStatus.FAILED, 0)
    return result


def test_redis_down(config):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = RedisServer().start()
    client = server.client(retry=Retry(NoBackoff(), 0))
    server.stop()
    result = _warm(client, config)
    assert re.search(CASE["redis_down"].expected.match, result.stop_reason), result.stop_reason


def test_redis_wrong_password(config):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = RedisServer(password="right-Horse-battery").start()
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=server.port, password="wr0ng-Staple-77", retry=Retry(NoBackoff(), 0))
        result = _warm(client, config)
    finally:
        server.stop()
    assert re.search(CASE["redis_wrong_password"].expected.match, result.stop_reason), result.stop_reason
    assert "wr0ng-Staple-77" not in json.dumps(result.to_dict(), default=str)
