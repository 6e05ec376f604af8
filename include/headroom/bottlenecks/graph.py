"""The call graph of a fleet (who calls whom), from the catalog, a ``caller,callee`` CSV or service-mesh metrics, merged.

An edge ``caller -> callee`` means the caller sends requests to the callee, so a
slow or failing callee degrades its caller: root causes are searched by walking
from the symptom *downstream*, along the edges. Nodes need not be catalog
services: databases, caches, queues and external endpoints are nodes too.
Cycles are allowed (the walk keeps the shortest path to each node and never
revisits one).
"""

from __future__ import annotations

import csv
import re
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.prometheus import PrometheusSource

GRAPH_COLUMNS = ("caller", "callee")
MESH_QUERY = "sum by (source_workload, destination_workload) (increase(istio_requests_total[{window}]))"
_UNKNOWN_WORKLOAD = {"", "unknown"}


@dataclass(frozen=True)
class CallGraph:
    """A directed call graph; ``sources`` records where each edge came from (``catalog``, a file, ``prometheus``)."""

    edges: frozenset[tuple[str, str]] = frozenset()
    extra_nodes: frozenset[str] = frozenset()
    sources: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset({n for e in self.edges for n in e} | self.extra_nodes)

    def callees(self, node: str) -> list[str]:
        return sorted(b for a, b in self.edges if a == node)

    def callers(self, node: str) -> list[str]:
        return sorted(a for a, b in self.edges if b == node)

    def adjacency(self) -> dict[str, list[str]]:
        """Callees per node (every node present, sorted for determinism); built once per graph."""
        return self._adjacency

    @cached_property
    def _adjacency(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in sorted(self.edges):
            out[a].append(b)
        return out

    def paths_from(self, start: str) -> dict[str, tuple[str, ...]]:
        """Shortest call path from ``start`` to every node it reaches downstream (``start`` itself included); cycles are fine."""
        adjacency = self._adjacency
        paths = {start: (start,)}
        todo = deque([start])
        while todo:
            node = todo.popleft()
            for callee in adjacency.get(node, ()):
                if callee not in paths:
                    paths[callee] = (*paths[node], callee)
                    todo.append(callee)
        return paths

    def cycles(self) -> list[tuple[str, ...]]:
        """One node list per strongly connected component with a cycle (self-calls included), for reporting."""
        adjacency = self.adjacency()
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        out: list[tuple[str, ...]] = []
        counter = [0]

        def visit(root: str) -> None:  # iterative Tarjan: deep graphs must not hit the recursion limit
            work = [(root, iter(adjacency[root]))]
            index[root] = low[root] = counter[0]
            counter[0] += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, children = work[-1]
                child = next(children, None)
                if child is not None:
                    if child not in index:
                        index[child] = low[child] = counter[0]
                        counter[0] += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(adjacency[child])))
                    elif child in on_stack:
                        low[node] = min(low[node], index[child])
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or (node, node) in self.edges:
                        out.append(tuple(sorted(component)))

        for node in sorted(adjacency):
            if node not in index:
                visit(node)
        return sorted(out)

    def unknown_nodes(self, known: Iterable[str]) -> list[str]:
        """Nodes of the graph that ``known`` (e.g. the services with metrics, or the catalog) does not name."""
        return sorted(self.nodes - set(known))

    def to_rows(self) -> list[dict[str, Any]]:
        return [{"caller": a, "callee": b, "source": "+".join(self.sources.get((a, b), ()))} for a, b in sorted(self.edges)]


def _graph(edges: Iterable[tuple[str, str]], source: str, extra: Iterable[str] = ()) -> CallGraph:
    edge_set = frozenset(edges)
    return CallGraph(edge_set, frozenset(extra), {e: (source,) for e in edge_set})


def graph_from_catalog(config: HeadroomConfig) -> CallGraph:
    """Edges ``service -> dependency`` from the catalog's ``dependencies`` (databases, caches, queues and services alike)."""
    return _graph(((svc.name, dep) for svc in config.services for dep in svc.dependencies), "catalog",
                  extra=(svc.name for svc in config.services))


def read_graph_csv(path: str | Path) -> CallGraph:
    """A ``caller,callee`` CSV (header required; extra columns ignored). Errors name the file and row."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: graph file not found")
    edges = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty graph file; expected a header 'caller,callee'")
        cols = [c.strip() for c in header]
        missing = [c for c in GRAPH_COLUMNS if c not in cols]
        if missing:
            raise DataError(f"{path}: header {header} lacks {missing}; expected 'caller,callee'")
        at = [cols.index(c) for c in GRAPH_COLUMNS]
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(cols):
                raise DataError(f"{path}: row {row_no}: {len(row)} fields, expected {len(cols)} ({','.join(cols)}): {row}")
            caller, callee = (row[i].strip() for i in at)
            if not caller or not callee:
                raise DataError(f"{path}: row {row_no}: empty {'caller' if not caller else 'callee'}: {row}")
            edges.append((caller, callee))
    if not edges:
        raise DataError(f"{path}: no edges")
    return _graph(edges, path.name)


def graph_from_mesh(result: list[dict[str, Any]], min_requests: float = 0.0) -> tuple[CallGraph, int]:
    """Edges from a Prometheus vector of request counts labelled ``source_workload``/``destination_workload``.

    :returns: the graph and how many series were dropped (unknown workload, or no requests in the window).
    """
    edges, dropped = [], 0
    for series in result:
        labels = series.get("metric", {})
        src, dst = labels.get("source_workload", ""), labels.get("destination_workload", "")
        value = float(series.get("value", [0, "0"])[1])
        if src in _UNKNOWN_WORKLOAD or dst in _UNKNOWN_WORKLOAD or not value > min_requests:
            dropped += 1
            continue
        edges.append((src, dst))
    return _graph(edges, "prometheus"), dropped


def graph_from_prometheus(source: PrometheusSource, at: pd.Timestamp, window: str = "1h", query: str = MESH_QUERY) -> tuple[CallGraph, int]:
    """Who called whom in the ``window`` before ``at``, from service-mesh request counters (Istio's by default)."""
    if not re.fullmatch(r"\d+[smhdw]", window):
        raise DataError(f"mesh graph window={window!r}: expected a Prometheus duration such as 30m, 1h or 1d")
    return graph_from_mesh(source.instant(query.format(window=window), at))


def merge_graphs(*graphs: CallGraph) -> CallGraph:
    """The union of ``graphs``; each edge remembers every source that has it."""
    sources: dict[tuple[str, str], tuple[str, ...]] = {}
    extra: set[str] = set()
    for g in graphs:
        extra |= g.extra_nodes
        for edge in g.edges:
            sources[edge] = tuple(dict.fromkeys((*sources.get(edge, ()), *g.sources.get(edge, ("?",)))))
    return CallGraph(frozenset(sources), frozenset(extra), sources)
