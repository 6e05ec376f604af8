"""The call graph: catalog, caller,callee CSV and service-mesh metrics, merged; cycles and unknown nodes."""

from __future__ import annotations

import pytest

from include.headroom.bottlenecks.graph import graph_from_catalog, graph_from_mesh, merge_graphs, read_graph_csv
from include.headroom.exceptions import DataError


def test_catalog_graph_has_services_and_their_databases(config):
    graph = graph_from_catalog(config)
    assert ("catalog-api", "postgres-main") in graph.edges and ("user-profile", "postgres-main") in graph.edges
    assert ("checkout-api", "payments-gateway") in graph.edges and ("payments-gateway", "card-processor") in graph.edges
    assert graph.callers("postgres-main") == ["catalog-api", "user-profile"]
    assert "edge-router" in graph.nodes  # a service without dependencies is still a node
    assert graph.paths_from("checkout-api")["card-processor"] == ("checkout-api", "payments-gateway", "card-processor")
    unknown = graph.unknown_nodes(s.name for s in config.services)
    assert "postgres-main" in unknown and "checkout-api" not in unknown


def test_csv_graph_with_a_cycle_is_walked_once(tmp_path):
    path = tmp_path / "graph.csv"
    path.write_text("caller,callee\na,b\nb,c\nc,a\nc,d\nd,d\n")
    graph = read_graph_csv(path)
    assert graph.paths_from("a") == {"a": ("a",), "b": ("a", "b"), "c": ("a", "b", "c"), "d": ("a", "b", "c", "d")}
    assert graph.cycles() == [("a", "b", "c"), ("d",)]
    assert graph.callees("c") == ["a", "d"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty graph file"),
    ("from,to\na,b\n", r"lacks \['caller', 'callee'\]"),
    ("caller,callee\na,b\nc\n", "row 3: 1 fields, expected 2"),
    ("caller,callee\na,b\n,c\n", "row 3: empty caller"),
    ("caller,callee\n", "no edges"),
])
def test_bad_graph_files_name_the_row(tmp_path, text, message):
    path = tmp_path / "g.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_graph_csv(path)


def test_mesh_edges_drop_unknown_and_idle_workloads_and_merge_with_the_catalog(config):
    vector = [
        {"metric": {"source_workload": "checkout-api", "destination_workload": "orders-api"}, "value": [0, "120"]},
        {"metric": {"source_workload": "checkout-api", "destination_workload": "fraud-check"}, "value": [0, "7"]},
        {"metric": {"source_workload": "unknown", "destination_workload": "orders-api"}, "value": [0, "3"]},
        {"metric": {"source_workload": "edge-router", "destination_workload": "checkout-api"}, "value": [0, "0"]},
    ]
    mesh, dropped = graph_from_mesh(vector)
    assert mesh.edges == {("checkout-api", "orders-api"), ("checkout-api", "fraud-check")} and dropped == 2
    merged = merge_graphs(graph_from_catalog(config), mesh)
    assert merged.sources[("checkout-api", "orders-api")] == ("catalog", "prometheus")
    assert merged.sources[("checkout-api", "fraud-check")] == ("prometheus",)
    assert "fraud-check" in merged.unknown_nodes(s.name for s in config.services)
