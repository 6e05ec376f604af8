"""The root-cause engine in the pipeline: which node of the catalog's call graph caused a finding, and whose team to tell.

The catalog's ``dependencies`` give the graph (services, databases, caches,
queues). Canonical metrics become the engine's long rows; a caller's metric
that measures one of its dependencies (``database_performance`` measures the
database) is attributed to that dependency as ``via <caller>``, so a database
shared by two services is blamed only when both see it slow.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from include.headroom.bottlenecks.graph import CallGraph, graph_from_catalog
from include.headroom.bottlenecks.rootcause import VIA, RootCauseSettings, load_rootcause_settings, rank_root_causes
from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.bottlenecks.analysis import Finding
    from include.headroom.config import HeadroomConfig

SYMPTOM_METRIC = {"dependency_failure": "error_rate"}  # every other type: response_time
STEP = 300


def dependency_kind(name: str, settings: RootCauseSettings) -> str | None:
    for kind, patterns in settings.dependency_kinds.items():
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            return kind
    return None


def services_needed(config: HeadroomConfig, graph: CallGraph, target: str, settings: RootCauseSettings) -> list[str]:
    """Catalog services whose metrics the engine needs for a symptom on ``target``: those it reaches, and every
    caller of a dependency it reaches whose client-side metrics are attributed to that dependency."""
    catalog = {s.name for s in config.services}
    reached = set(graph.paths_from(target))
    needed = reached & catalog
    for node in reached - catalog:
        if dependency_kind(node, settings) is not None:
            needed |= set(graph.callers(node)) & catalog
    return sorted(needed)


def to_long(config: HeadroomConfig, rows: pd.DataFrame, settings: RootCauseSettings) -> pd.DataFrame:
    """Canonical rows (``ts, service, metric, value``) as the engine's long rows, with client-side metrics attributed."""
    import pandas as pd

    if rows is None or rows.empty:
        return pd.DataFrame(columns=["timestamp", "service", "metric", "statistic", "value"])
    base = pd.DataFrame({"timestamp": pd.to_datetime(rows["ts"], utc=True), "service": rows["service"].astype(str),
                         "metric": rows["metric"].astype(str), "statistic": "", "value": rows["value"].astype(float)})
    parts = [base]
    deps = {s.name: s.dependencies for s in config.services}
    for metric, spec in settings.client_metrics.items():
        own = base[base["metric"] == metric]
        if own.empty:
            continue
        for caller, frame in own.groupby("service", sort=False):
            for dep in deps.get(caller, ()):
                if dependency_kind(dep, settings) == spec.get("kind"):
                    parts.append(frame.assign(service=dep, metric=spec.get("as", metric), statistic=f"{VIA}{caller}"))
    return pd.concat(parts, ignore_index=True)


def owner_of(config: HeadroomConfig, node: str, path: tuple[str, ...] | list[str]) -> str | None:
    """The team to tell: the node's owner when it is a catalog service, else the owner of the nearest service on the path."""
    owners = {s.name: s.owner for s in config.services}
    if node in owners:
        return owners[node]
    for hop in reversed(list(path)):
        if hop in owners:
            return owners[hop]
    return None


def windows(finding_start: pd.Timestamp, settings: RootCauseSettings) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(normal start, issue start, issue end) around a finding that starts at ``finding_start``."""
    import pandas as pd

    pipe = settings.pipeline
    step = pd.Timedelta(seconds=STEP)
    issue_start = finding_start - step * int(pipe.get("lead_bins", 3) + pipe.get("pre_bins", 12))
    issue_end = finding_start + step * int(pipe.get("after_bins", 12) + 1)
    normal_start = issue_start - pd.Timedelta(days=float(pipe.get("normal_days", 7)))
    return normal_start, issue_start, issue_end


def explain_finding(config: HeadroomConfig, finding: Finding, rows: pd.DataFrame, graph: CallGraph | None = None,
                    settings: RootCauseSettings | None = None) -> Finding:
    """``finding`` with ``evidence["root_cause"]``: the ranked root-cause node, its score, path, evidence and owner.

    :param rows: canonical rows of (at least) :func:`services_needed`, from the normal window to the issue's end.
    """
    settings = settings or load_rootcause_settings()
    graph = graph or graph_from_catalog(config)
    normal_start, issue_start, issue_end = windows(finding.start, settings)
    long = to_long(config, rows, settings)
    issue = long[(long["timestamp"] >= issue_start) & (long["timestamp"] < issue_end)]
    normal = long[(long["timestamp"] >= normal_start) & (long["timestamp"] < issue_start)]
    metric = SYMPTOM_METRIC.get(finding.type, "response_time")
    pipe = settings.pipeline
    local = replace(settings, lead_bins=int(pipe.get("lead_bins", 3)), pre_bins=int(pipe.get("pre_bins", 12)),
                    after_bins=int(pipe.get("after_bins", 12)))
    try:
        ranking = rank_root_causes(issue, normal, graph, finding.service, metric, finding.start, local)
    except DataError as exc:
        return replace(finding, evidence={**finding.evidence, "root_cause": {"service": None, "error": str(exc)}})
    top = ranking.top
    if top is None:
        return finding
    reach = set(graph.paths_from(finding.service))
    summary = {
        "service": top.service, "score": top.score, "path": list(top.path) or [finding.service, top.service],
        "owner": owner_of(config, top.service, top.path), "symptom_metric": metric,
        "evidence": [{k: v for k, v in e.__dict__.items() if v is not None} for e in top.evidence[:4]],
        "ranking": [{"service": c.service, "score": c.score} for c in ranking.candidates[:5]],
        "notes": list(ranking.notes),  # e.g. graph nodes without data (a database nobody measures), services outside the graph
        "graph": [list(e) for e in sorted((a, b) for a, b in graph.edges if a in reach or b == top.service)],
    }
    return replace(finding, evidence={**finding.evidence, "root_cause": summary})


def explain_findings(config: HeadroomConfig, findings: list[Finding], read: Any,
                     settings: RootCauseSettings | None = None) -> list[Finding]:
    """Every observed finding explained; ``read(services, start, end)`` returns canonical rows (the store's ``read_metrics``)."""
    if not findings:
        return findings
    settings = settings or load_rootcause_settings()
    graph = graph_from_catalog(config)
    out = []
    for f in findings:
        if f.kind != "observed":
            out.append(f)
            continue
        normal_start, _, issue_end = windows(f.start, settings)
        rows = read(services_needed(config, graph, f.service, settings), normal_start, issue_end)
        out.append(explain_finding(config, f, rows, graph, settings))
    return out
