"""The call graph from service-mesh metrics in a real Prometheus (``istio_requests_total`` backfilled through promtool)."""

from __future__ import annotations

import pandas as pd
import pytest

from include.headroom.bottlenecks.graph import graph_from_catalog, graph_from_prometheus, merge_graphs
from include.headroom.exceptions import DataError
from include.headroom.metrics.prometheus import PrometheusSource
from include.headroom.metrics.source_config import load_source_settings
from tests.servers import PrometheusServer

END = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=2)
# (source, destination, requests per minute); "unknown" is what Istio reports for traffic from outside the mesh
CALLS = [("checkout-api", "orders-api", 60), ("checkout-api", "payments-gateway", 30), ("orders-api", "fraud-check", 5),
         ("unknown", "checkout-api", 90), ("search-api", "orders-api", 0)]


def _openmetrics() -> str:
    lines = ["# TYPE istio_requests counter\n"]
    minutes = pd.date_range(END - pd.Timedelta(hours=2), END, freq="1min", inclusive="left")
    for src, dst, rate in CALLS:
        head = (f'istio_requests_total{{source_workload="{src}",destination_workload="{dst}",reporter="source",'
                f'response_code="200"}} ')
        lines += [f"{head}{float(rate * i)!r} {t.timestamp():.0f}\n" for i, t in enumerate(minutes)]
    lines.append("# EOF\n")
    return "".join(lines)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("mesh"))
    server.backfill(iter([_openmetrics()]))
    server.start()
    yield server
    server.stop()


def test_mesh_graph_from_real_prometheus_merged_with_the_catalog(prometheus, config):
    source = PrometheusSource(prometheus.url, load_source_settings().prometheus, config, sleep=lambda s: None)
    mesh, dropped = graph_from_prometheus(source, END - pd.Timedelta(minutes=1), window="1h")
    assert mesh.edges == {("checkout-api", "orders-api"), ("checkout-api", "payments-gateway"), ("orders-api", "fraud-check")}
    assert dropped == 2  # the unknown source and the idle edge
    merged = merge_graphs(graph_from_catalog(config), mesh)
    assert merged.sources[("checkout-api", "orders-api")] == ("catalog", "prometheus")
    assert merged.paths_from("checkout-api")["fraud-check"] == ("checkout-api", "orders-api", "fraud-check")
    assert merged.unknown_nodes(s.name for s in config.services)[:2] == ["card-processor", "fraud-check"]


def test_mesh_window_must_be_a_duration(prometheus, config):
    source = PrometheusSource(prometheus.url, load_source_settings().prometheus, config, sleep=lambda s: None)
    with pytest.raises(DataError, match="window='an hour'"):
        graph_from_prometheus(source, END, window="an hour")
