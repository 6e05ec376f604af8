"""Cross-service root cause: rank the nodes of a call graph by how well a change in them explains a symptom.

Given a symptom (a service, a metric such as ``latency`` or ``availability``,
a time), every node with data gets evidence per metric: how far its values in
the issue window are from its own normal behaviour AND from the minutes just
before the issue (both must agree, so a service that merely runs at another
level than in the normal data is not flagged), in the harmful direction only
(latency up, availability down), and when the change started (its onset).

A node is a likely root cause when

- it changed in a way that can produce the symptom (its own evidence),
- none of its callees changed in a way that explains its change (a slow or
  failing callee degrades its callers, so the deepest changed node along a
  chain of changed nodes is the root; a callee that merely gets more or fewer
  requests explains nothing),
- the symptom reaches it by walking the call graph downstream, through nodes
  that changed too (the propagation path),
- and its change did not start after the symptom's.

Scores are in [0, 1]; every node with data is ranked, best first. Nothing here
learns anything from labelled issues: there is no prior over node names.
"""

from __future__ import annotations

import gzip
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from include.headroom.bottlenecks.graph import CallGraph
from include.headroom.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

LONG_COLUMNS = ("timestamp", "service", "metric", "statistic", "value")
KINDS = ("latency", "errors", "requests", "saturation")
SYMPTOM_KINDS = ("latency", "errors")
VIA = "via "
MEAN_STATISTICS = ("Average", "mean", "")  # statistics that are per-request means: the only ones harm is counted from


# -- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricKind:
    kind: str
    bad: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"rootcause.yaml metrics: kind={self.kind!r} must be one of {KINDS}")
        if self.bad not in ("up", "down", "both"):
            raise ConfigError(f"rootcause.yaml metrics: bad={self.bad!r} must be up, down or both")

    @property
    def sign(self) -> float:
        return {"up": 1.0, "down": -1.0, "both": 0.0}[self.bad]


@dataclass(frozen=True)
class RootCauseSettings:
    """The engine's knobs (``rootcause.yaml``)."""

    metrics: Mapping[str, MetricKind]
    statistics: tuple[str, ...] = ("Average", "mean", "p50", "p90", "")
    threshold: float = 3.0
    relative_floor: float = 0.05
    absolute_floor: float = 1e-6
    min_normal_points: int = 6
    explains: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    weights: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    unreachable_factor: float = 0.2
    late_onset_factor: float = 0.5
    coverage_floor: float = 0.2
    coverage_unknown: float = 0.8
    lead_bins: int = 0
    after_bins: int = 12
    pre_bins: int = 6
    client_metrics: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    dependency_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pipeline: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.relative_floor < 0 or self.absolute_floor <= 0:
            raise ConfigError("rootcause.yaml deviation: threshold and absolute_floor must be > 0, relative_floor >= 0")
        if min(self.lead_bins, self.pre_bins, self.after_bins) < 0 or self.pre_bins < 1:
            raise ConfigError(f"rootcause.yaml windows: bins must be >= 0 and pre_bins >= 1 (got lead {self.lead_bins}, "
                              f"after {self.after_bins}, pre {self.pre_bins})")
        for kind in SYMPTOM_KINDS:
            if kind not in self.weights or kind not in self.explains:
                raise ConfigError(f"rootcause.yaml: weights and explains need an entry for symptom kind {kind!r}")

    def kind_of(self, metric: str) -> MetricKind | None:
        return self.metrics.get(metric)


def load_rootcause_settings(config_dir: str | Path | None = None) -> RootCauseSettings:
    """Read ``rootcause.yaml`` from the active configuration folder (the shipped one when that folder has none)."""
    from include.headroom.configfile import CONFIG_DIR, config_directory, read_once

    directory = config_directory(config_dir)
    if not (directory / "rootcause.yaml").exists():
        directory = CONFIG_DIR
    raw = read_once(directory / "rootcause.yaml")
    try:
        dev, win = raw.get("deviation", {}), raw.get("windows", {})
        return RootCauseSettings(
            metrics={name: MetricKind(**spec) for name, spec in raw["metrics"].items()},
            statistics=tuple(str(s) for s in raw.get("statistics", ())),
            threshold=float(dev.get("threshold", 3.0)), relative_floor=float(dev.get("relative_floor", 0.05)),
            absolute_floor=float(dev.get("absolute_floor", 1e-6)), min_normal_points=int(dev.get("min_normal_points", 6)),
            explains={k: dict(v) for k, v in raw.get("explains", {}).items()},
            weights={k: dict(v) for k, v in raw.get("weights", {}).items()},
            unreachable_factor=float(raw.get("unreachable_factor", 0.2)), late_onset_factor=float(raw.get("late_onset_factor", 0.5)),
            coverage_floor=float(raw.get("coverage_floor", 0.2)), coverage_unknown=float(raw.get("coverage_unknown", 0.8)),
            lead_bins=int(win.get("lead_bins", 0)), after_bins=int(win.get("after_bins", 12)), pre_bins=int(win.get("pre_bins", 6)),
            client_metrics={k: dict(v) for k, v in raw.get("client_metrics", {}).items()},
            dependency_kinds={k: tuple(v) for k, v in raw.get("dependency_kinds", {}).items()},
            pipeline=dict(raw.get("pipeline", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{directory / 'rootcause.yaml'}: invalid ({type(exc).__name__}: {exc})") from exc


# -- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """How one metric of a node changed.

    :param z_normal: largest harmful robust z against the node's normal data (None: no usable normal data).
    :param z_pre: largest harmful robust z against the pre-issue bins (None: no pre-issue value).
    :param deviation: the change that counts: the smaller of the two when both exist (both must agree).
    :param onset: first bin of the issue window past the threshold (None: never).
    """

    metric: str
    statistic: str
    kind: str
    deviation: float
    z_normal: float | None
    z_pre: float | None
    onset: str | None
    value: float | None
    normal: float | None
    pre: float | None


@dataclass(frozen=True)
class Candidate:
    service: str
    score: float
    evidence: tuple[Evidence, ...]
    path: tuple[str, ...]
    own: float
    explained_by: str | None
    explained: float
    onset: str | None
    reachable: bool

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "score": self.score, "evidence": [asdict(e) for e in self.evidence],
                "path": list(self.path), "own": self.own, "explained_by": self.explained_by, "explained": self.explained,
                "onset": self.onset, "reachable": self.reachable}


@dataclass(frozen=True)
class Ranking:
    target: str
    metric: str
    at: str
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def rank_of(self, service: str) -> int | None:
        """1-based position of ``service`` (None: not ranked)."""
        for i, c in enumerate(self.candidates, start=1):
            if c.service == service:
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"target": {"service": self.target, "metric": self.metric, "at": self.at},
                "ranking": [c.to_dict() for c in self.candidates], "notes": list(self.notes), "seconds": round(self.seconds, 4)}


# -- reading ----------------------------------------------------------------------------------------


def read_long_csv(path: str | Path) -> pd.DataFrame:
    """A ``timestamp,service,metric,statistic,value`` CSV (``.gz`` too). Errors name the file, row and field."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: metrics file not found")
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"service": str, "metric": str, "statistic": str, "timestamp": str, "value": str},
                            keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a CSV with header {','.join(LONG_COLUMNS)} ({exc})") from exc
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} missing; expected {','.join(LONG_COLUMNS)} (got {list(frame.columns)})")
    if frame.empty:
        raise DataError(f"{path}: no rows")
    ts = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    value = pd.to_numeric(frame["value"], errors="coerce")
    for name, bad in (("timestamp", ts.isna()), ("value", value.isna() & (frame["value"].str.strip() != "")),
                      ("service", frame["service"].str.strip() == ""), ("metric", frame["metric"].str.strip() == "")):
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{path}: row {i + 2}: field {name!r} is invalid ({frame.iloc[i][name]!r}); "
                            f"{int(bad.sum())} such row(s)")
    out = pd.DataFrame({"timestamp": ts, "service": frame["service"], "metric": frame["metric"],
                        "statistic": frame["statistic"], "value": value})
    return out[out["value"] == out["value"]].reset_index(drop=True)


# -- the engine -------------------------------------------------------------------------------------


def _infer_step(ts: pd.Series) -> pd.Timedelta:
    import pandas as pd

    uniq = pd.DatetimeIndex(ts.drop_duplicates()).sort_values()
    if len(uniq) < 2:
        return pd.Timedelta(minutes=5)
    return pd.Timedelta(pd.Series(uniq).diff().dropna().median())


def _series_stats(values: np.ndarray, settings: RootCauseSettings) -> tuple[float | None, float]:
    """Robust level (median) and scale (MAD x 1.4826, floored) of ``values``; level None when too few."""
    import numpy as np

    values = values[np.isfinite(values)]
    if len(values) < settings.min_normal_points:
        return None, math.nan
    level = float(np.median(values))
    mad = float(np.median(np.abs(values - level))) * 1.4826
    return level, max(mad, settings.relative_floor * abs(level), settings.absolute_floor)


def _squash(deviation: float, threshold: float) -> float:
    """A deviation as a strength in [0, 1): 0.5 at the threshold."""
    d = max(deviation, 0.0)
    return d * d / (d * d + threshold * threshold)


@dataclass
class _NodeEvidence:
    items: list[Evidence] = field(default_factory=list)
    by_kind: dict[str, float] = field(default_factory=dict)
    onset_by_kind: dict[str, int | None] = field(default_factory=dict)
    # per (metric, statistic): the issue window's values and the reference (pre-issue, else normal) level
    windows: dict[tuple[str, str], tuple[Any, float]] = field(default_factory=dict)


def _evidence(issue: pd.DataFrame, normal: pd.DataFrame, bins: pd.DatetimeIndex, pre_end: int, issue_slice: slice,
              settings: RootCauseSettings) -> tuple[dict[str, _NodeEvidence], int]:
    """Per node, per (metric, statistic): the deviations of the issue window. Returns the evidence and how many series were ignored."""
    import numpy as np
    import pandas as pd

    out: dict[str, _NodeEvidence] = {}
    ignored = 0
    keys = ["service", "metric", "statistic"]
    known = issue["metric"].map(lambda m: settings.kind_of(m) is not None)
    ignored = int(issue.loc[~known, keys].drop_duplicates().shape[0])
    usable = issue[known]
    if usable.empty:
        return out, ignored
    # one matrix (bins x series) instead of a lookup per series: under a second for a 50-node graph
    matrix = usable.pivot_table(index="timestamp", columns=keys, values="value", aggfunc="mean").reindex(bins)
    levels: dict[tuple[str, str, str], tuple[float | None, float]] = {}
    if len(normal):
        grouped = normal[normal["metric"].map(lambda m: settings.kind_of(m) is not None)].groupby(keys, sort=False)["value"]
        median = grouped.median()
        count = grouped.count()
        dev = (normal.set_index(keys)["value"] - median.reindex(pd.MultiIndex.from_frame(normal[keys])).to_numpy()).abs()
        mad = dev.groupby(level=[0, 1, 2], sort=False).median() * 1.4826
        for key, level in median.items():
            if count[key] < settings.min_normal_points:
                continue
            levels[key] = (float(level), max(float(mad.get(key, 0.0)), settings.relative_floor * abs(level), settings.absolute_floor))
    pre_rows = matrix.iloc[max(0, pre_end - settings.pre_bins): pre_end].to_numpy(float)
    win_rows = matrix.iloc[issue_slice].to_numpy(float)
    window = bins[issue_slice]
    for col, (node, metric, stat) in enumerate(matrix.columns):
        spec = settings.kind_of(metric)
        pre_vals = pre_rows[:, col]
        win_vals = win_rows[:, col]
        if not np.isfinite(win_vals).any():
            continue
        level, scale = levels.get((node, metric, stat), (None, math.nan))
        pre_finite = pre_vals[np.isfinite(pre_vals)]
        pre = float(np.median(pre_finite)) if len(pre_finite) else None
        if level is None and pre is None:
            continue
        if level is None:
            scale = max(settings.relative_floor * abs(pre), settings.absolute_floor)
            if len(pre_finite) >= settings.min_normal_points:
                mad = float(np.median(np.abs(pre_finite - pre))) * 1.4826
                scale = max(scale, mad)
        sign = spec.sign

        def harmful(z: np.ndarray, sign: float = sign) -> np.ndarray:
            return np.abs(z) if sign == 0 else sign * z

        z_n = harmful((win_vals - level) / scale) if level is not None else None
        z_p = harmful((win_vals - pre) / scale) if pre is not None else None
        per_bin = np.fmin(z_n, z_p) if z_n is not None and z_p is not None else z_n if z_n is not None else z_p
        finite = per_bin[np.isfinite(per_bin)]
        if not len(finite):
            continue
        deviation = float(finite.max())
        over = np.flatnonzero(np.nan_to_num(per_bin, nan=-np.inf) > settings.threshold)
        onset = int(over[0]) if len(over) else None
        peak = int(np.nanargmax(np.where(np.isfinite(per_bin), per_bin, -np.inf)))
        node_ev = out.setdefault(node, _NodeEvidence())
        node_ev.windows[(metric, stat)] = (win_vals, pre if pre is not None else level)
        node_ev.items.append(Evidence(
            metric=metric, statistic=stat, kind=spec.kind, deviation=round(deviation, 3),
            z_normal=round(float(np.nanmax(z_n)), 3) if z_n is not None and np.isfinite(z_n).any() else None,
            z_pre=round(float(np.nanmax(z_p)), 3) if z_p is not None and np.isfinite(z_p).any() else None,
            onset=window[onset].isoformat() if onset is not None else None,
            value=round(float(win_vals[peak]), 6) if np.isfinite(win_vals[peak]) else None,
            normal=round(level, 6) if level is not None else None, pre=round(pre, 6) if pre is not None else None,
        ))
    for node_ev in out.values():
        node_ev.items.sort(key=lambda e: -e.deviation)
        by_metric: dict[tuple[str, str], list[Evidence]] = {}
        for e in node_ev.items:
            by_metric.setdefault((e.kind, e.metric), []).append(e)
        for (kind, _metric), evs in by_metric.items():
            via = [e for e in evs if e.statistic.startswith(VIA)]
            # A client-side view of a shared dependency counts only as far as every caller sees it.
            chosen = [min(via, key=lambda e: e.deviation)] if via else _preferred(evs, settings.statistics)
            best = max(chosen, key=lambda e: e.deviation)
            if best.deviation > node_ev.by_kind.get(kind, -math.inf):
                node_ev.by_kind[kind] = best.deviation
                node_ev.onset_by_kind[kind] = window.get_loc(best.onset) if best.onset else None
    return out, ignored


def _preferred(evs: list[Evidence], statistics: tuple[str, ...]) -> list[Evidence]:
    chosen = [e for e in evs if e.statistic in statistics]
    return chosen or evs


def _impact(ev: _NodeEvidence | None, kind: str, settings: RootCauseSettings) -> float | None:
    """How many request-units of harm the node's change adds over the window: the harmful excess of its ``kind`` metric
    over its reference, times its requests, summed over the bins (None: no requests or no such metric).

    A callee can only explain as much of its caller's change as it adds: 100 slow calls do not explain 1,000.
    """
    import numpy as np

    if ev is None:
        return None
    requests = next((vals for (m, _s), (vals, _ref) in ev.windows.items()
                     if (k := settings.kind_of(m)) is not None and k.kind == "requests"), None)
    if requests is None:
        return None
    best = None
    for (m, stat), (vals, ref) in ev.windows.items():
        spec = settings.kind_of(m)
        if spec is None or spec.kind != kind or stat not in MEAN_STATISTICS or ref is None:
            continue
        # time added per request is the mean's excess (a percentile's excess is not), times the requests
        excess = np.clip(spec.sign * (vals - ref), 0.0, None)
        total = float(np.nansum(excess * np.nan_to_num(requests)))
        best = total if best is None else max(best, total)
    return best


def _bin_of(bins: pd.DatetimeIndex, at: pd.Timestamp, step: pd.Timedelta) -> int:
    pos = int(bins.searchsorted(at, side="right")) - 1
    if pos < 0 or at >= bins[pos] + step:
        raise DataError(f"--at {at.isoformat()} falls in no bin of the issue data "
                        f"({bins[0].isoformat()} .. {(bins[-1] + step).isoformat()})")
    return pos


def rank_root_causes(
    issue: pd.DataFrame,
    normal: pd.DataFrame | None,
    graph: CallGraph,
    target: str,
    metric: str,
    at: pd.Timestamp,
    settings: RootCauseSettings | None = None,
) -> Ranking:
    """Rank every node with data as the root cause of ``metric`` changing on ``target`` at ``at``.

    :param issue: long rows (``timestamp, service, metric, statistic, value``) around the symptom,
        with at least ``pre_bins`` before it when possible.
    :param normal: long rows of normal operation (any period); may be empty or miss services.
    :param metric: the symptom's metric (``latency``, ``availability``, ``response_time``, ``error_rate``...);
        its kind (latency or errors) decides which changes explain it.
    :raises DataError: unknown target or metric, no data in the window, a graph that does not contain the target.
    """
    import pandas as pd

    from include.headroom.timeutil import utc

    started = time.perf_counter()
    settings = settings or load_rootcause_settings()
    spec = settings.kind_of(metric)
    if spec is None or spec.kind not in SYMPTOM_KINDS:
        usable = sorted(m for m, k in settings.metrics.items() if k.kind in SYMPTOM_KINDS)
        raise DataError(f"target metric {metric!r} is not a latency or error metric; use one of {usable}")
    symptom_kind = spec.kind
    if target not in graph.nodes:
        raise DataError(f"target service {target!r} is not a node of the graph ({len(graph.nodes)} nodes); "
                        f"the graph does not reach it")
    nodes_with_data = set(issue["service"].unique()) if len(issue) else set()
    if target not in nodes_with_data:
        raise DataError(f"target service {target!r} has no rows in the issue data")
    when = utc(at)
    step = _infer_step(issue["timestamp"])
    bins = pd.date_range(issue["timestamp"].min(), issue["timestamp"].max(), freq=step)
    pos = _bin_of(bins, when, step)
    first = max(0, pos - settings.lead_bins)
    issue_slice = slice(first, min(len(bins), pos + settings.after_bins + 1))
    notes = [f"no bin before the issue window starting {bins[0].isoformat()}: compared with normal data only"] if first == 0 else []
    normal = normal if normal is not None else issue.iloc[0:0]
    evidence, ignored = _evidence(issue, normal, bins, first, issue_slice, settings)
    if ignored:
        notes.append(f"{ignored} series of metrics the engine does not know were ignored")
    target_metric_rows = issue[(issue["service"] == target) & (issue["metric"] == metric)]
    if target_metric_rows.empty:
        raise DataError(f"target service {target!r} has no {metric!r} rows in the issue data")
    window_rows = target_metric_rows[(target_metric_rows["timestamp"] >= bins[first]) &
                                     (target_metric_rows["timestamp"] < bins[issue_slice.stop - 1] + step)]
    if window_rows.empty:
        raise DataError(f"target service {target!r}: no {metric!r} value in the issue window {bins[first].isoformat()} .. "
                        f"{(bins[issue_slice.stop - 1] + step).isoformat()}")
    outside = sorted(nodes_with_data - graph.nodes)
    if outside:
        notes.append(f"{len(outside)} services with data are not in the graph and are not ranked: {', '.join(outside[:10])}"
                     + (" ..." if len(outside) > 10 else ""))
    no_data = sorted(graph.nodes - nodes_with_data)
    if no_data:
        notes.append(f"{len(no_data)} graph nodes have no data: {', '.join(no_data[:10])}" + (" ..." if len(no_data) > 10 else ""))

    weights = settings.weights[symptom_kind]
    strength = {n: {k: _squash(v, settings.threshold) for k, v in ev.by_kind.items()} for n, ev in evidence.items()}

    def own(node: str) -> float:
        s = strength.get(node, {})
        return max([weights.get(k, 0.0) * v for k, v in s.items()] or [0.0])

    def onset(node: str) -> int | None:
        ev = evidence.get(node)
        if ev is None:
            return None
        # the onset of the change that makes the node a candidate (its strongest weighted kind), not of any noise
        s = strength.get(node, {})
        kinds = sorted((k for k in s if k != "requests" and ev.onset_by_kind.get(k) is not None),
                       key=lambda k: -weights.get(k, 0.0) * s[k])
        return ev.onset_by_kind[kinds[0]] if kinds else None

    adjacency = graph.adjacency()

    def effective_callees(node: str) -> set[str]:
        """Callees with data; callees without data are looked through (a load balancer without metrics hides nothing)."""
        out, todo, seen = set(), list(adjacency.get(node, ())), {node}
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            if c in evidence:
                out.add(c)
            else:
                todo.extend(adjacency.get(c, ()))
        return out

    reach_cache: dict[str, set[str]] = {}

    def reaches(node: str) -> set[str]:
        if node not in reach_cache:
            reach_cache[node] = set(graph.paths_from(node)) - {node}
        return reach_cache[node]

    def _leads(a: str, b: str) -> bool:
        """Whether ``a``'s change comes before ``b``'s: earlier onset, else the larger deviation."""
        oa, ob = onset(a), onset(b)
        if oa is not None and ob is not None and oa != ob:
            return oa < ob
        return max(evidence[a].by_kind.values(), default=0.0) > max(evidence[b].by_kind.values(), default=0.0)

    def explained(node: str) -> tuple[float, str | None]:
        """How much the changes of ``node``'s callees explain its own change (0: nothing; 1: fully)."""
        mine = strength.get(node, {})
        n_onset = onset(node)
        best, by = 0.0, None
        for callee in sorted(effective_callees(node)):
            if node in reaches(callee) and not _leads(callee, node):
                continue  # a cycle: only the one that changed first (or most) explains the other
            theirs = strength.get(callee, {})
            amount = 0.0
            for callee_kind, transfer in settings.explains.items():
                for caller_kind, weight in transfer.items():
                    amount = max(amount, weight * min(theirs.get(callee_kind, 0.0), max(mine.get(caller_kind, 0.0), 0.5)))
            part = share(callee, node)
            if part is not None:
                amount *= part
            c_onset = onset(callee)
            if c_onset is not None and n_onset is not None and c_onset > n_onset:
                amount *= settings.late_onset_factor
            if amount > best:
                best, by = amount, callee
        return best, by

    impacts = {n: _impact(evidence.get(n), symptom_kind, settings) for n in evidence}
    target_impact = impacts.get(target)

    def share(node: str, of: str) -> float | None:
        """The share of ``of``'s harm that ``node``'s harm could account for (None: unknown)."""
        mine, theirs = impacts.get(node), impacts.get(of)
        if mine is None or theirs is None:
            return None
        return 1.0 if theirs <= 0 else min(1.0, mine / theirs)

    paths = graph.paths_from(target)
    target_onset = onset(target)
    candidates = []
    for node in sorted(graph.nodes & set(evidence)):
        node_own = own(node)
        amount, by = explained(node)
        score = node_own * (1.0 - amount)
        part = share(node, target) if target_impact else None
        score *= settings.coverage_floor + (1.0 - settings.coverage_floor) * (part if part is not None else settings.coverage_unknown)
        path = paths.get(node)
        reachable = path is not None
        if reachable:
            for middle in path[1:-1]:
                if middle in evidence:  # the change must travel through the nodes between: they changed too
                    score *= 0.3 + 0.7 * own(middle)
        else:
            score *= settings.unreachable_factor
            path = ()
        n_onset = onset(node)
        if n_onset is not None and target_onset is not None and n_onset > target_onset:
            score *= settings.late_onset_factor
        window = bins[issue_slice]
        candidates.append(Candidate(
            service=node, score=round(score, 4), evidence=tuple(evidence[node].items), path=tuple(path),
            own=round(node_own, 4), explained_by=by, explained=round(amount, 4),
            onset=window[n_onset].isoformat() if n_onset is not None else None, reachable=reachable,
        ))
    candidates.sort(key=lambda c: (-c.score, -c.own, len(c.path) if c.path else 99, c.service))
    return Ranking(target=target, metric=metric, at=when.isoformat(), candidates=tuple(candidates), notes=tuple(notes),
                   seconds=time.perf_counter() - started)


def zscore_baseline(issue: pd.DataFrame, normal: pd.DataFrame, at: pd.Timestamp, settings: RootCauseSettings | None = None) -> list[str]:
    """The naive baseline: nodes by their largest robust z-score against normal data in the issue window (no graph, no pre-issue bin)."""
    import numpy as np

    from include.headroom.timeutil import utc

    settings = settings or load_rootcause_settings()
    step = _infer_step(issue["timestamp"])
    when = utc(at)
    window = issue[issue["timestamp"] > when - step]
    scores: dict[str, float] = {}
    normal_groups = {k: g["value"].to_numpy(float) for k, g in normal.groupby(["service", "metric", "statistic"], sort=False)}
    for (node, metric, stat), rows in window.groupby(["service", "metric", "statistic"], sort=False):
        level, scale = _series_stats(normal_groups.get((node, metric, stat), np.empty(0)), settings)
        if level is None:
            continue
        values = rows["value"].to_numpy(float)
        if not np.isfinite(values).any():
            continue
        z = float(np.nanmax(np.abs(values - level) / scale))
        scores[node] = max(scores.get(node, 0.0), z)
    for node in issue["service"].unique():
        scores.setdefault(node, 0.0)
    return [n for n, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def rank_files(metrics: str | Path, normal: str | Path | None, graph: str | Path, target: str, metric: str, at: pd.Timestamp,
               output: str | Path | None = None) -> Ranking:
    """The command line's work: read the long CSVs and the ``caller,callee`` graph, rank, write ``output`` as JSON.

    :raises DataError: naming the file, row or node at fault.
    """
    import json

    from include.headroom.bottlenecks.graph import read_graph_csv
    from include.headroom.fileio import write_atomic
    from include.headroom.timeutil import utc

    try:
        when = utc(at)
    except (ValueError, TypeError) as exc:
        raise DataError(f"--at {at!r} is not an ISO-8601 time ({exc})") from exc
    call_graph = read_graph_csv(graph)
    issue = read_long_csv(metrics)
    normal_rows = read_long_csv(normal) if normal else None
    if target not in set(issue["service"]):
        raise DataError(f"{metrics}: no rows for target service {target!r} (services: {', '.join(sorted(set(issue['service']))[:12])} ...)")
    if target not in call_graph.nodes:
        raise DataError(f"{graph}: target service {target!r} is not a node of the graph; no edge reaches it")
    ranking = rank_root_causes(issue, normal_rows, call_graph, target, metric, when)
    if output:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(ranking.to_dict(), indent=2, default=str))
    return ranking
