"""The incident's dependency graph in the report: columns by call distance, the path and root cause highlighted."""

from __future__ import annotations

import base64
import re

from include.headroom.report.html import _findings
from include.headroom.report.incident_graph import incident_graph_svg, layers

EDGES = [["catalog-api", "postgres-main"], ["catalog-api", "redis-cache"], ["user-profile", "postgres-main"]]


def test_layers_put_other_callers_of_the_root_beside_the_symptom():
    assert layers(EDGES, "catalog-api") == {"catalog-api": 0, "postgres-main": 1, "redis-cache": 1, "user-profile": 0}


def test_svg_highlights_symptom_root_and_path():
    svg = incident_graph_svg(EDGES, "catalog-api", "postgres-main", ["catalog-api", "postgres-main"]).decode()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert svg.count("#d1495b") >= 2  # the root's box and the path's arrow
    assert "#f0a202" in svg  # the symptom


def test_findings_show_the_root_cause_the_owner_and_the_graph():
    finding = {"type": "database_bound", "kind": "observed", "service": "catalog-api", "root_causes": [],
               "evidence": {"root_cause": {"service": "postgres-main", "score": 0.84, "path": ["catalog-api", "postgres-main"],
                                           "owner": "commerce", "ranking": [{"service": "postgres-main", "score": 0.84},
                                                                            {"service": "catalog-api", "score": 0.01}],
                                           "graph": EDGES}}}
    page = _findings([finding])
    assert "Root cause <b>postgres-main</b>" in page and "tell <b>commerce</b>" in page
    assert "catalog-api → postgres-main" in page
    img = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)
    assert img and b"<svg" in base64.b64decode(img.group(1))
    assert "data:image/png" not in page  # the forecast plots are the page's only PNGs
    assert "Root cause" not in _findings([{**finding, "evidence": {}}])
