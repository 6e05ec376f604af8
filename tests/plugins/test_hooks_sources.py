"""Source hooks against real servers: Prometheus (Debian package), S3 and CloudWatch on moto in server mode."""

from __future__ import annotations

import dataclasses
import io
import json

import pandas as pd
import pytest

from headroom_provider.hooks.cloudwatch import CloudWatchMetricsHook
from headroom_provider.hooks.files import MetricsFilesHook
from headroom_provider.hooks.prometheus import PrometheusHook
from include.headroom.exceptions import SourceError
from include.headroom.metrics.exporter import FleetExporter
from include.headroom.metrics.sample_fleet import SampleFleet
from include.headroom.metrics.source_config import CloudWatchQuery, load_source_settings
from include.headroom.metrics.units import normalize_units
from tests.servers import PrometheusServer, moto_server, postgres_server  # noqa: F401 (fixtures)

SERVICES = ["orders-api", "docs-site"]


@pytest.fixture(scope="module")
def prometheus(fleet, tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prom-hook"))
    end = fleet.anchor
    server.backfill(
        FleetExporter(fleet, origin=end - pd.Timedelta(hours=3), services=SERVICES).openmetrics(end - pd.Timedelta(hours=2), end)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    extra = json.loads(moto_server.aws_conn())
    extra["extra"]["config_kwargs"] = {"retries": {"total_max_attempts": 1}}  # our own retries are under test
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(extra))
    return moto_server


def test_prometheus_hook_reads_through_the_connection(prometheus, monkeypatch, fleet, config):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": prometheus.port, "schema": "http"})
    )
    hook = PrometheusHook()
    ok, message = hook.test_connection()
    assert ok and message.startswith("Prometheus 2.") and message.endswith(f"at {prometheus.url} answers queries")
    source = hook.get_source(config)
    source.services = [config.service(n) for n in SERVICES]
    start, end = fleet.anchor - pd.Timedelta(hours=1), fleet.anchor
    rows = source.read(start, end)
    expected = fleet.generate(start, end, services=SERVICES)
    got = rows[rows["metric"] == "replicas"].set_index(["service", "ts"])["value"].sort_index()
    want = expected[expected["metric"] == "replicas"].set_index(["service", "ts"])["value"].sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False)


def test_prometheus_hook_reports_an_unreachable_server(monkeypatch, config):
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 1}))
    source = PrometheusHook().get_source(config, settings=dataclasses.replace(load_source_settings().prometheus, retries=1))
    with pytest.raises(SourceError, match=r"prometheus at http://127.0.0.1:1 unreachable for buildinfo after 1 attempts: ConnectionError"):
        source.build_info()


# -- S3 ----------------------------------------------------------------------------------------


def _fleet_csv(fleet, start, end) -> bytes:
    rows = fleet.generate(start, end, services=["orders-api"])
    rows = rows[rows["metric"] == "cpu_utilization"]
    return rows[["ts", "service", "metric", "value", "unit"]].rename(columns={"ts": "timestamp"}).to_csv(index=False).encode()


def test_files_from_s3_csv_and_parquet(aws, fleet, config):
    hook = MetricsFilesHook()
    hook.s3.create_bucket("metrics-in")
    start = fleet.anchor - pd.Timedelta(hours=2)
    mid, end = start + pd.Timedelta(hours=1), fleet.anchor
    hook.s3.load_bytes(_fleet_csv(fleet, start, mid), key="fleet/part-1.csv", bucket_name="metrics-in")
    parquet = io.BytesIO()
    pd.read_csv(io.BytesIO(_fleet_csv(fleet, mid, end))).to_parquet(parquet)
    hook.s3.load_bytes(parquet.getvalue(), key="fleet/part-2.parquet", bucket_name="metrics-in")
    settings = dataclasses.replace(load_source_settings().files, paths=("s3://metrics-in/fleet/",))
    rows = hook.get_source(config, settings).read(start, end)
    want = fleet.generate(start, end, services=["orders-api"])
    want = want[want["metric"] == "cpu_utilization"]
    assert rows["ts"].tolist() == want["ts"].tolist() and rows["value"].tolist() == want["value"].tolist()


def test_a_missing_s3_object_names_bucket_and_key(aws, config, monkeypatch):
    hook = MetricsFilesHook()
    hook.s3.create_bucket("metrics-missing")
    settings = dataclasses.replace(load_source_settings().files, paths=("s3://metrics-missing/day=2026-10-31/metrics.csv",))
    with pytest.raises(SourceError, match=r"no S3 object matches s3://metrics-missing/day=2026-10-31/metrics.csv"):
        hook.get_source(config, settings).read("2026-10-31", "2026-11-01")
    with pytest.raises(SourceError, match=r"cannot read s3://metrics-missing/gone.csv: 404: .*Not Found"):
        hook.get_conn().read_bytes("s3://metrics-missing/gone.csv")
    assert hook.test_connection() == (False, "sources.yaml files.paths is empty")  # the shipped configuration names no files


# -- CloudWatch ---------------------------------------------------------------------------------


CW_QUERIES = (
    CloudWatchQuery(
        metric="cpu_utilization",
        namespace="AWS/ECS",
        metric_name="CPUUtilization",
        stat="Average",
        dimensions={"ServiceName": "$service"},
        unit="Percent",
    ),
    CloudWatchQuery(
        metric="response_time",
        namespace="Headroom/Services",
        metric_name="TargetResponseTime",
        stat="Average",
        dimensions={"ServiceName": "$service"},
        unit="Seconds",
        labels={"quantile": "p$percentile"},
    ),
)


@pytest.fixture
def cloudwatch_data(aws, config):
    """Two hours of the fleet (anchored at the last full hour) put into CloudWatch."""
    fleet = SampleFleet(config, anchor=pd.Timestamp.now(tz="UTC").floor("h"))
    start, end = fleet.anchor - pd.Timedelta(hours=2), fleet.anchor
    rows = fleet.generate(start, end, services=SERVICES)
    client = CloudWatchMetricsHook().conn
    for q in CW_QUERIES:
        part = rows[rows["metric"] == q.metric]
        scale = 0.001 if q.metric == "response_time" else 1.0
        data = [
            {
                "MetricName": q.metric_name,
                "Dimensions": [{"Name": "ServiceName", "Value": r.service}],
                "Timestamp": r.ts.to_pydatetime(),
                "Value": r.value * scale,
                "Unit": q.unit,
            }
            for r in part.itertuples()
        ]
        for i in range(0, len(data), 20):  # PutMetricData takes at most 20 datums a call
            client.put_metric_data(Namespace=q.namespace, MetricData=data[i : i + 20])
    return fleet, rows, start, end


def _cw_settings(**changes):
    return dataclasses.replace(load_source_settings().cloudwatch, queries=CW_QUERIES, **changes)


def test_cloudwatch_values_read_back_normalized(cloudwatch_data, config):
    fleet, rows, start, end = cloudwatch_data
    hook = CloudWatchMetricsHook()
    source = hook.get_source(config, _cw_settings(max_queries_per_call=3))
    source.services = [config.service(n) for n in SERVICES]
    read = normalize_units(source.read(start, end), load_source_settings().units, "cloudwatch")
    assert source.stats["calls"] == 2  # 4 series, at most 3 queries a call
    for metric in ("cpu_utilization", "response_time"):
        got = read[read["metric"] == metric].set_index(["service", "ts"])["value"].sort_index()
        want = rows[rows["metric"] == metric].set_index(["service", "ts"])["value"].sort_index()
        pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-9)
    assert sorted(read.loc[read["metric"] == "response_time", "labels"].unique()) == [
        "quantile=p90",
        "quantile=p95",
    ]  # docs-site is basic, orders-api professional
    assert set(read["unit"]) == {"percent", "ms"} and set(read["original_unit"]) == {"Percent", "Seconds"}
    ok, message = hook.test_connection()
    assert ok and "metrics listed" in message


def _throttle(client, times: int) -> list[int]:
    """Answer the next ``times`` GetMetricData calls with CloudWatch's throttling error, as the service sends it."""
    from botocore.awsrequest import AWSResponse

    calls = []

    class Raw:
        def stream(self, **kwargs):
            yield b""

    def before_send(request, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            # {"__type": "Throttling", "message": "Rate exceeded"} in the protocol the client speaks (CBOR or JSON).
            if client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor":
                body = b"\xa2\x66__type\x6aThrottling\x67message\x6dRate exceeded"
                headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
            else:
                body = b'{"__type": "Throttling", "message": "Rate exceeded"}'
                headers = {"Content-Type": "application/x-amz-json-1.0"}
            headers["x-amzn-query-error"] = "Throttling;Sender"
            resp = AWSResponse(request.url, 400, headers, Raw())
            resp._content = body
            return resp
        return None

    client.meta.events.register("before-send.cloudwatch.GetMetricData", before_send)
    return calls


def test_cloudwatch_throttling_is_retried_then_succeeds(cloudwatch_data, config):
    fleet, rows, start, end = cloudwatch_data
    client = CloudWatchMetricsHook().conn
    calls = _throttle(client, 2)
    slept = []
    from include.headroom.metrics.cloudwatch import CloudWatchSource

    source = CloudWatchSource(client, _cw_settings(backoff_s=0.5), config, services=SERVICES, sleep=slept.append)
    read = source.read(start, end)
    assert len(calls) == 3 and slept == [0.5, 1.0]
    assert len(read) == len(rows[rows["metric"].isin(["cpu_utilization", "response_time"])])


def test_cloudwatch_throttled_beyond_retries_fails_naming_the_call(cloudwatch_data, config):
    _, _, start, end = cloudwatch_data
    client = CloudWatchMetricsHook().conn
    _throttle(client, 10)
    from include.headroom.metrics.cloudwatch import CloudWatchSource

    source = CloudWatchSource(client, _cw_settings(retries=3), config, services=SERVICES, sleep=lambda s: None)
    with pytest.raises(SourceError, match=r"still throttled after 3 attempts \(queries \['m_0_0', 'm_0_1', 'm_1_0', 'm_1_1'\]"):
        source.read(start, end)


@pytest.fixture
def paging_cloudwatch(monkeypatch):
    """The moto server pages GetMetricData as CloudWatch does past its datapoint limit: a page, a NextToken, the rest.

    moto answers every GetMetricData in one page; this wraps its handler (the server runs in this
    process) so the real client and our source go through NextToken over HTTP.
    """
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    original = CloudWatchResponse.get_metric_data
    seen: list[str | None] = []

    def paged(self, page: int = 10):
        token = self._get_param("NextToken")
        seen.append(token)
        offset = int(token) if token else 0
        results, more = [], False
        for r in original(self).result["MetricDataResults"]:
            rest = len(r["values"]) > offset + page
            more |= rest
            results.append(
                {
                    **r,
                    "values": r["values"][offset : offset + page],
                    "timestamps": r["timestamps"][offset : offset + page],
                    "status_code": "PartialData" if rest else "Complete",
                }
            )
        return ActionResult({"MetricDataResults": results, **({"NextToken": str(offset + page)} if more else {})})

    monkeypatch.setattr(CloudWatchResponse, "get_metric_data", paged)
    return seen


def test_cloudwatch_follows_next_token_pages(cloudwatch_data, paging_cloudwatch, config):
    fleet, rows, start, end = cloudwatch_data
    hook = CloudWatchMetricsHook()
    source = hook.get_source(config, _cw_settings())
    source.services = [config.service(n) for n in SERVICES]
    read = normalize_units(source.read(start, end), load_source_settings().units, "cloudwatch")
    assert paging_cloudwatch == [None, "10", "20"]  # 24 five-minute points per series, 10 a page
    assert source.stats["calls"] == 3
    for metric in ("cpu_utilization", "response_time"):
        got = read[read["metric"] == metric].set_index(["service", "ts"])["value"].sort_index()
        want = rows[rows["metric"] == metric].set_index(["service", "ts"])["value"].sort_index()
        pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-9)


def test_cloudwatch_metric_math_plans_hidden_inputs(config):
    from include.headroom.metrics.cloudwatch import CloudWatchSource

    settings = load_source_settings().cloudwatch
    plan = {p.result_id: p for p in CloudWatchSource(None, settings, config, services=["orders-api"]).plan()}
    throughput = plan["e_2_0"]
    assert [e.get("ReturnData") for e in throughput.entries] == [False, True]
    assert throughput.entries[1]["Expression"] == "requests_2_0 / PERIOD(requests_2_0)" and throughput.unit == "req/s"
    assert plan["m_3_0"].entries[0]["MetricStat"]["Stat"] == "p95"


@pytest.mark.parametrize("hook", [PrometheusHook, MetricsFilesHook, CloudWatchMetricsHook])
def test_source_hooks_declare_their_connection(hook):
    assert hook.conn_name_attr and hook.default_conn_name and hook.conn_type and hook.hook_name
    assert callable(hook.test_connection)


# -- store backend -----------------------------------------------------------------------------


def test_store_hook_selects_postgres_by_configuration(monkeypatch, postgres_server):
    from headroom_provider.hooks.store import HeadroomStoreHook
    from include.headroom.store import PostgresStore

    monkeypatch.setenv("HEADROOM_STORE_BACKEND", "postgres")
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_HEADROOM",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": postgres_server.port,
                "login": postgres_server.user,
                "schema": postgres_server.dbname,
            }
        ),
    )
    hook = HeadroomStoreHook()
    store = hook.get_store()
    assert isinstance(store, PostgresStore) and store.schema == "headroom"
    assert hook.test_connection() == (True, "PostgreSQL store schema 'headroom' is reachable (0 metric rows)")
    store.drop_schema()
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_HEADROOM", json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "x"})
    )
    ok, message = HeadroomStoreHook().test_connection()
    assert not ok and message.startswith("cannot connect to the PostgreSQL store")


def test_store_hook_without_the_connection_uses_the_dsn_like_open_store(monkeypatch, postgres_server):
    """One factory: the hook hands its connection (or none) to open_store, which falls back to HEADROOM_POSTGRES_DSN."""
    from headroom_provider.hooks.store import HeadroomStoreHook
    from include.headroom.exceptions import ConfigError
    from include.headroom.store import PostgresStore, open_store

    monkeypatch.setenv("HEADROOM_STORE_BACKEND", "postgres")
    monkeypatch.delenv("AIRFLOW_CONN_POSTGRES_HEADROOM", raising=False)
    monkeypatch.delenv("HEADROOM_POSTGRES_DSN", raising=False)
    with pytest.raises(ConfigError, match="needs HEADROOM_POSTGRES_DSN outside Airflow"):
        HeadroomStoreHook().get_store()
    monkeypatch.setenv("HEADROOM_POSTGRES_DSN", postgres_server.dsn)
    via_hook, direct = HeadroomStoreHook().get_store(), open_store()
    assert isinstance(via_hook, PostgresStore) and repr(via_hook) == repr(direct) == "PostgresStore(schema='headroom')"
    import pandas as pd

    via_hook.upsert(
        "watermarks",
        pd.DataFrame(
            [{"source": "probe", "watermark": pd.Timestamp("2026-11-01T00:00Z"), "updated_at": pd.Timestamp("2026-11-01T00:00Z")}]
        ),
    )
    assert direct.read("watermarks", source="probe")["watermark"].tolist() == [pd.Timestamp("2026-11-01T00:00Z")]
    via_hook.drop_schema()
