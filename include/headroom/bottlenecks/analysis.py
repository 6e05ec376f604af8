"""Bottleneck analysis: tier SLOs and burn rates, the USE method, rule-based episodes and a causal root-cause ranking.

Each signal is compared with its own seasonal baseline (the median of the same
5-minute slot over the days before the analysis, computed from past data
only). Rules over those deviations mark points; runs of marked points become
episodes; each episode gets a type, a confidence, a ranked list of causes with
evidence (onset, lag to the symptom, lagged correlation, prior weight) and the
remedy the action DAGs understand. Episodes are traced ``context_hours`` back
before the window, so an hourly run sees a leak or an outage that began
earlier, and reported when they reach into the window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.catalog import Service
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SYMPTOMS = ("response_time",)
SYMPTOM_NODE = "api_latency"
OBSERVED, PREDICTED = "observed", "predicted"


@dataclass(frozen=True)
class Cause:
    """One candidate cause with the evidence a human can check.

    :param score: ranking strength: median robust z over the episode x (0.5 + 0.5 |correlation|).
    :param z: median robust z-score of the signal over the episode (signed).
    :param onset: the anomaly detector's first event on the signal from ``cause_lead_points`` before the episode
        (else the first run of two points past ``cause_z``).
    :param lag_min: minutes from the signal's onset to the symptom's (positive: the signal moved first).
    :param correlation: strongest correlation of the signal, lagged 0..``max_lag_points``, with the symptom.
    :param prior_weight: strongest path weight to the symptom in the dependency prior (0: no known path).
    :param is_root: no signal upstream of it in the dependency prior deviates too.
    :param anomaly: the highest causal anomaly score (:mod:`include.headroom.anomalies`) of the signal in the episode.
    """

    signal: str
    score: float
    z: float
    onset: str | None
    is_root: bool
    lag_min: float | None = None
    correlation: float | None = None
    prior_weight: float = 0.0
    anomaly: float | None = None


@dataclass(frozen=True)
class Finding:
    service: str
    tier: str
    type: str
    confidence: float
    start: pd.Timestamp
    end: pd.Timestamp
    kind: str
    root_causes: tuple[Cause, ...]
    evidence: dict[str, Any]
    remedy: str
    severity: str

    def to_row(self, window_end: pd.Timestamp, window_start: pd.Timestamp | None = None) -> dict[str, Any]:
        return {
            "window_start": window_start if window_start is not None else window_end,
            "window_end": window_end,
            "service": self.service,
            "tier": self.tier,
            "type": self.type,
            "confidence": self.confidence,
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "root_causes": json.dumps([asdict(c) for c in self.root_causes]),
            "evidence": json.dumps(self.evidence, default=str),
            "remedy": self.remedy,
            "severity": self.severity,
            "summary": self.describe(),
        }

    @property
    def top_cause(self) -> str | None:
        return self.root_causes[0].signal if self.root_causes else None

    def describe(self) -> str:
        """One line for a log or a page: what, when, why, what to do."""
        causes = ", ".join(
            f"{c.signal} (z {c.z:+.1f}, onset {c.onset or '-'}, corr {c.correlation if c.correlation is not None else '-'})"
            for c in self.root_causes[:3]
        )
        end = f"{self.end:%H:%M}" if self.end.date() == self.start.date() else f"{self.end:%Y-%m-%d %H:%M}"
        root = self.evidence.get("root_cause") or {}
        across = (
            f"; root cause {root['service']} via {' -> '.join(root.get('path', []))}, tell {root.get('owner') or '?'}"
            if root.get("service") and root["service"] != self.service
            else ""
        )
        return (
            f"{self.service} [{self.tier}] {self.kind} {self.type} {self.start:%Y-%m-%d %H:%M}..{end} "
            f"confidence {self.confidence:.2f}: causes {causes or 'none'} -> {self.remedy}{across}"
        )


def wide(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long canonical rows of one service as a ``ts`` x ``metric`` frame on the 5-minute grid."""
    import pandas as pd

    if metrics.empty:
        return pd.DataFrame()
    frame = metrics.pivot_table(index="ts", columns="metric", values="value", aggfunc="mean")
    frame.index = pd.DatetimeIndex(frame.index)
    return frame.sort_index()


def seasonal_baseline(frame: pd.DataFrame, window_start: pd.Timestamp, days: int) -> tuple[pd.DataFrame, pd.Series]:
    """Per 5-minute slot of the day, the median of the ``days`` before ``window_start``; and a robust scale per metric."""
    import numpy as np
    import pandas as pd

    history = frame[(frame.index < window_start) & (frame.index >= window_start - pd.Timedelta(days=days))]
    slot = lambda idx: idx.hour * 60 + idx.minute  # noqa: E731
    if history.empty:
        return pd.DataFrame(index=frame.index, columns=frame.columns, dtype=float), pd.Series(np.nan, index=frame.columns)
    medians = history.groupby(slot(history.index)).median()
    baseline = medians.reindex(slot(frame.index)).set_axis(frame.index)
    residual = history - medians.reindex(slot(history.index)).set_axis(history.index)
    mad = (residual - residual.median()).abs().median() * 1.4826
    floor = history.abs().median() * 0.01 + 1e-9
    return baseline, np.maximum(mad, floor)


def _runs(mask: np.ndarray, min_len: int, max_gap: int = 2) -> list[tuple[int, int]]:
    """Index ranges [i, j] of runs of True at least ``min_len`` long, bridging gaps up to ``max_gap``."""
    import numpy as np

    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > max_gap + 1:
            runs.append((start, prev))
            start = i
        prev = i
    runs.append((start, prev))
    return [(a, b) for a, b in runs if b - a + 1 >= min_len]


class _Prior:
    """The dependency prior as a graph over canonical metrics."""

    def __init__(self, config: HeadroomConfig) -> None:
        bn = config.bottlenecks
        self.node_of = dict(bn.signals)
        self.signal_of = {v: k for k, v in self.node_of.items()}
        self.parents: dict[str, list[str]] = {}
        self.children: dict[str, list[tuple[str, float]]] = {}
        for src, dst, weight in bn.dependency_prior:
            self.parents.setdefault(dst, []).append(src)
            self.children.setdefault(src, []).append((dst, weight))

    def ancestors(self, metric: str) -> set[str]:
        """Canonical metrics upstream of ``metric``."""
        seen: set[str] = set()
        todo = list(self.parents.get(self.node_of.get(metric, ""), []))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.parents.get(node, []))
        return {self.signal_of[n] for n in seen if n in self.signal_of}

    def path_weight(self, metric: str, target: str = SYMPTOM_NODE) -> float:
        """Signed product of edge weights on the strongest path from ``metric`` to node ``target`` (0: no path)."""
        best = 0.0
        todo = [(self.node_of.get(metric, ""), 1.0, frozenset())]
        while todo:
            node, weight, seen = todo.pop()
            if node == target:
                best = weight if abs(weight) > abs(best) else best
                continue
            for child, w in self.children.get(node, []):
                if child not in seen:
                    todo.append((child, weight * w, seen | {node}))
        return best

    def weight_to(self, metric: str, target: str = SYMPTOM_NODE) -> float:
        """Strongest absolute path weight from ``metric`` to ``target``."""
        return round(abs(self.path_weight(metric, target)), 3)

    def explains(self, upstream: str, z_upstream: float, metric: str, z_metric: float) -> bool:
        """Whether ``upstream`` moving by ``z_upstream`` pushes ``metric`` the way it moved (traffic falling explains no rise)."""
        sign = self.path_weight(upstream, self.node_of.get(metric, ""))
        return sign != 0 and (sign * z_upstream > 0) == (z_metric > 0)


def _onset(values: np.ndarray, threshold: float, confirm: int = 2) -> int | None:
    """First point of the first run of ``confirm`` points past ``threshold`` (a lone noisy point is no onset)."""
    import numpy as np

    over = np.abs(np.nan_to_num(values)) > threshold
    if confirm > 1 and len(over) >= confirm:
        held = np.lib.stride_tricks.sliding_window_view(over, confirm).all(axis=1)
        hits = np.flatnonzero(held)
    else:
        hits = np.flatnonzero(over)
    return int(hits[0]) if len(hits) else None


def _lagged_correlation(cause: np.ndarray, symptom: np.ndarray, max_lag: int) -> float | None:
    """Correlation of ``cause`` at t - lag with ``symptom`` at t, the strongest over lags 0..max_lag (sign kept)."""
    import numpy as np

    best = None
    for lag in range(max_lag + 1):
        x = cause[: len(cause) - lag] if lag else cause
        y = symptom[lag:]
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() < 6 or np.std(x[keep]) == 0 or np.std(y[keep]) == 0:
            continue
        r = float(np.corrcoef(x[keep], y[keep])[0, 1])
        if best is None or abs(r) > abs(best):
            best = r
    return None if best is None else round(best, 3)


def rank_causes(config: HeadroomConfig, z: pd.DataFrame, start: int, end: int, prior: _Prior | None = None) -> tuple[Cause, ...]:
    """Rank the signals that deviate during points ``start..end`` of ``z`` (robust z-scores, one column per metric).

    Roots (no deviating signal upstream in the dependency prior) come first, then
    the stronger deviation weighted by how closely the signal moves with the symptom.
    """

    det = config.bottlenecks.detection
    prior = prior or _Prior(config)
    threshold = float(det.get("cause_z", 3.0))
    lead_points = int(det.get("cause_lead_points", 12))
    max_lag = int(det.get("max_lag_points", 6))
    episode = z.iloc[start : end + 1]
    strength = episode.abs().median()
    medians = episode.median()
    deviating = {m for m in strength.index if m in prior.node_of and m not in SYMPTOMS and strength[m] > threshold}
    first = max(0, start - lead_points)
    lead = z.iloc[first : end + 1]
    context = z.iloc[max(0, start - 4 * lead_points) : end + 1]
    symptom = context[SYMPTOMS[0]].to_numpy(float) if SYMPTOMS[0] in context else None
    symptom_onset = _onset(lead[SYMPTOMS[0]].to_numpy(float), threshold) if SYMPTOMS[0] in lead else None
    causes = []
    for metric in deviating:
        onset = _onset(lead[metric].to_numpy(float), threshold)
        lag = None
        if onset is not None and symptom_onset is not None:
            lag = float((lead.index[symptom_onset] - lead.index[onset]).total_seconds() / 60.0)
        corr = _lagged_correlation(context[metric].to_numpy(float), symptom, max_lag) if symptom is not None else None
        score = float(strength[metric]) * (0.5 + 0.5 * abs(corr or 0.0))
        causes.append(
            Cause(
                signal=metric,
                score=round(score, 2),
                z=round(float(episode[metric].median()), 2),
                onset=lead.index[onset].isoformat() if onset is not None else None,
                is_root=not any(
                    prior.explains(up, float(medians[up]), metric, float(medians[metric])) for up in prior.ancestors(metric) & deviating
                ),
                lag_min=lag,
                correlation=corr,
                prior_weight=prior.weight_to(metric),
            )
        )
    causes.sort(key=lambda c: (not c.is_root, -c.score, c.signal))
    return tuple(causes)


def _level_mask(
    value: np.ndarray, reference: np.ndarray, budget: dict[str, float], level: str, direction: str, relative: bool
) -> np.ndarray:
    """Points at or past a budget ``level`` (absolute, or relative to ``reference``)."""
    import numpy as np

    limit = budget[level] * reference if relative else np.full(len(value), budget[level])
    with np.errstate(invalid="ignore"):
        return (value <= limit) if direction == "low" else (value >= limit)


def _rules(
    config: HeadroomConfig, z: pd.DataFrame, frame: pd.DataFrame, baseline: pd.DataFrame, leak_slope: np.ndarray, prior: _Prior
) -> dict[str, np.ndarray]:
    """Per type, the points where its rule holds."""
    import numpy as np

    bn = config.bottlenecks
    det, alarms = bn.detection, bn.alarms
    n = len(frame)
    col = lambda m: frame[m].to_numpy(float) if m in frame else np.full(n, np.nan)  # noqa: E731
    base = lambda m: baseline[m].to_numpy(float) if m in baseline else np.full(n, np.nan)  # noqa: E731
    with np.errstate(invalid="ignore"):
        latency_up = col("response_time") > det["latency_inflation"] * base("response_time")
        errors_high = col("error_rate") > alarms["error_rate"]["threshold"]
        cpu_high = col("cpu_utilization") > det["cpu_high_pct"]
        hit_low = (col("cache_hit_ratio") < alarms["cache_hit_ratio"]["threshold"]) | (
            col("cache_hit_ratio") < base("cache_hit_ratio") - det["cache_drop"]
        )
        hit_ok = col("cache_hit_ratio") >= base("cache_hit_ratio") - det["cache_ok_margin"]
        db_slow = col("database_performance") > det["db_slowdown_factor"] * base("database_performance")
        errors_warn = col("error_rate") >= bn.budgets.get("error_rate", {}).get(bn.resource_rule_level, alarms["error_rate"]["threshold"])
        memory_full = col("memory_utilization") >= bn.budgets.get("memory_utilization", {}).get("critical", 100.0)
    rules = {
        # errors with neither CPU nor memory exhausted: something the service calls is failing
        "dependency_failure": errors_high & ~cpu_high & ~memory_full,
        "cache_bound": hit_low & (db_slow | latency_up),
        "database_bound": db_slow & hit_ok,
        "cpu_bound": cpu_high & latency_up,
        "memory_leak": leak_slope > det["memory_leak_slope_pct_per_h"],
    }
    # Resources without a dedicated rule: at the budget level, with the latency symptom, and
    # nothing upstream of the resource deviating (else the upstream signal is the bottleneck).
    threshold = float(det.get("cause_z", 3.0))
    for name in bn.resource_rule_resources:
        res = bn.resources[name]
        metric = res["utilization"]
        if metric not in frame or metric not in bn.budgets:
            continue
        relative = bool(res.get("relative", False))
        value = col(metric)
        breach = _level_mask(value, base(metric), dict(bn.budgets[metric]), bn.resource_rule_level, res["direction"], relative)
        harm = 1.0 if res["direction"] == "high" else -1.0
        upstream_moves = np.zeros(n, bool)
        for up in prior.ancestors(metric):
            if up in z:
                push = np.sign(prior.path_weight(up, prior.node_of[metric])) * harm  # the way ``up`` moves to hurt ``metric``
                upstream_moves |= np.nan_to_num(z[up].to_numpy(float)) * push > threshold
        symptom = latency_up | (errors_warn if res.get("errors") else np.zeros(n, bool))
        mask = breach & symptom & ~upstream_moves
        rules[res["type"]] = rules[res["type"]] | mask if res["type"] in rules else mask
    return rules


def _with_anomaly_scores(
    causes: tuple[Cause, ...],
    history: pd.DataFrame,
    first: pd.Timestamp,
    last: pd.Timestamp,
    cache: dict[str, pd.DataFrame],
    lead_from: pd.Timestamp | None = None,
) -> tuple[Cause, ...]:
    """Each cause with the anomaly detector's evidence (:mod:`include.headroom.anomalies`): the highest score its
    signal reached in the episode, and its onset = the detector's first event from ``lead_from`` to the episode's end
    (the robust-z onset stays when the detector reported none); lags to the symptom are recomputed from those onsets."""
    from dataclasses import replace

    import pandas as pd

    from include.headroom.anomalies import default_params, score_series

    def detected(signal: str) -> pd.DataFrame:
        if signal not in cache:
            series = history[signal].dropna() if signal in history else pd.Series(dtype=float)
            seconds = ((series.index - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(float)
            scores, events, _ = score_series(seconds, series.to_numpy(float), default_params())
            cache[signal] = pd.DataFrame({"score": scores, "event": events}, index=series.index)
        return cache[signal]

    def onset(signal: str) -> pd.Timestamp | None:
        frame = detected(signal)
        hits = frame.index[(frame.index >= (lead_from or first)) & (frame.index <= last) & (frame["event"] == "anomaly").to_numpy()]
        return hits[0] if len(hits) else None

    symptom = onset(SYMPTOMS[0]) if SYMPTOMS[0] in history else None
    out = []
    for cause in causes:
        frame = detected(cause.signal)
        inside = frame["score"][(frame.index >= first) & (frame.index <= last)]
        found = onset(cause.signal)
        when = found if found is not None else (pd.Timestamp(cause.onset) if cause.onset else None)
        lag = cause.lag_min
        if found is not None and symptom is not None:
            lag = float((symptom - found).total_seconds() / 60.0)
        out.append(
            replace(
                cause,
                anomaly=round(float(inside.max()), 3) if len(inside) else None,
                onset=when.isoformat() if when is not None else None,
                lag_min=lag,
            )
        )
    return tuple(out)


def _leak_slope(frame: pd.DataFrame) -> pd.Series | None:
    """Percent per hour that the 24-hour mean of memory rises (over the last hour), from past points only."""
    if "memory_utilization" not in frame:
        return None
    daily_mean = frame["memory_utilization"].rolling("24h", min_periods=12).mean()
    return daily_mean.diff(12)  # 12 points of 5 minutes


def analyze_service(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, window_start: pd.Timestamp, window_end: pd.Timestamp
) -> list[Finding]:
    """Observed bottleneck episodes of one service that reach into ``[window_start, window_end)``.

    Episodes are traced from ``context_hours`` before the window; the baseline comes from the
    ``baseline_days`` before that. Only points before ``window_end`` are used.

    :param metrics: canonical rows of the service covering the window, the context and the baseline days before it.
    """
    import numpy as np
    import pandas as pd

    start, end = window_start, window_end
    bn = config.bottlenecks
    det = bn.detection
    frame = wide(metrics)
    if frame.empty:
        return []
    frame = frame[frame.index < end]
    history = frame
    traced_from = start - pd.Timedelta(hours=float(det.get("context_hours", 0)))
    baseline, scale = seasonal_baseline(frame, traced_from, int(det["baseline_days"]))
    slope = _leak_slope(frame)
    inside = (frame.index >= traced_from) & (frame.index < end)
    frame, baseline = frame[inside], baseline[inside]
    if frame.empty or baseline.isna().all().all():
        return []
    z = (frame - baseline) / scale
    prior = _Prior(config)
    leak = np.nan_to_num(slope[inside].to_numpy(float)) if slope is not None else np.zeros(len(frame))
    rules = _rules(config, z, frame, baseline, leak, prior)
    min_points = int(det["min_episode_points"])
    min_leak_points = int(det["memory_leak_min_hours"] * 12)
    findings = []
    anomaly_cache: dict[str, pd.DataFrame] = {}
    for kind, mask in rules.items():
        for a, b in _runs(mask, min_leak_points if kind == "memory_leak" else min_points):
            if frame.index[b] < start:
                continue  # over before the window: an earlier run reported it
            held = float(np.mean(mask[a : b + 1]))
            confidence = round(min(1.0, 0.5 + 0.5 * held * min(1.0, (b - a + 1) / 12)), 2)
            lead_from = frame.index[max(0, a - int(det.get("cause_lead_points", 12)))]
            causes = _with_anomaly_scores(
                rank_causes(config, z, a, b, prior), history, frame.index[a], frame.index[b], anomaly_cache, lead_from
            )
            if kind == "memory_leak":
                causes = tuple(sorted(causes, key=lambda c: c.signal != "memory_utilization"))
            peak = {m: round(float(frame[m].iloc[a : b + 1].max()), 6) for m in frame.columns}
            findings.append(
                Finding(
                    service=service.name,
                    tier=service.tier.value,
                    type=kind,
                    confidence=confidence,
                    start=frame.index[a],
                    end=frame.index[b],
                    kind=OBSERVED,
                    root_causes=causes,
                    evidence={
                        "points": int(b - a + 1),
                        "rule_held": round(held, 3),
                        "peak": peak,
                        "baseline": {m: round(float(baseline[m].iloc[a]), 6) for m in baseline.columns if np.isfinite(baseline[m].iloc[a])},
                    },
                    remedy=bn.remedies[kind],
                    severity="critical" if kind == "dependency_failure" or service.tier.value == "critical" else "high",
                )
            )
    # Scaling does not fix a failing dependency: an episode inside a dependency failure is reported once, as that.
    # A leak explains high memory: no separate memory_bound episode while it lasts.
    failures = [f for f in findings if f.type == "dependency_failure"]
    leaks = [f for f in findings if f.type == "memory_leak"]
    findings = [f for f in findings if f.type == "dependency_failure" or not any(d.start <= f.start <= d.end for d in failures)]
    findings = [f for f in findings if f.type != "memory_bound" or not any(f.start <= d.end and f.end >= d.start for d in leaks)]
    return sorted(findings, key=lambda f: (f.start, f.type))


def _normal_sf(x: np.ndarray) -> np.ndarray:
    # scipy.special, not scipy.stats: the same function, without seconds of import in every task process.
    from scipy.special import ndtr

    return ndtr(-x)


def predicted_findings(
    config: HeadroomConfig, service: Service, capacity: pd.DataFrame, as_of: pd.Timestamp, forecasts: pd.DataFrame | None = None
) -> list[Finding]:
    """Bottlenecks predicted from the latest forecasts, raised when their probability passes the threshold.

    Two sources: the capacity table's saturation within ``prediction.saturation_days`` (days ahead),
    and each forecast series crossing its limit within its operational horizon (response time 1 h,
    throughput 30 min, other resources 2 h): ``P(y > limit)`` from the forecast's interval, taken
    as normal, maximised over the horizon.
    """
    import numpy as np
    import pandas as pd

    from include.headroom.forecasting.capacity import capacity_limit

    bn = config.bottlenecks
    pred = bn.prediction
    threshold = float(pred.get("probability_threshold", 0.7))
    types = dict(pred.get("types", {}))
    now = as_of
    out = []
    # Only trusted forecasts (backtest MAPE within the accuracy gate) may predict a bottleneck.
    rows = (
        capacity[(capacity["service"] == service.name) & (capacity["status"] == "ok") & capacity["trusted"].astype(bool)]
        if len(capacity)
        else capacity
    )
    trusted_metrics = set(rows["metric"]) if len(rows) else set()
    horizon_days = float(pred.get("saturation_days", 1e9))
    for row in rows.itertuples():
        when = row.saturation_at if pd.notna(row.saturation_at) else row.saturation_at_upper
        if pd.isna(when) or row.saturation_probability <= threshold or row.metric not in types:
            continue
        if utc(when) > now + pd.Timedelta(days=horizon_days):
            continue
        kind = types[row.metric]
        out.append(
            Finding(
                service=service.name,
                tier=service.tier.value,
                type=kind,
                confidence=round(float(row.saturation_probability), 2),
                start=utc(when),
                end=utc(when),
                kind=PREDICTED,
                root_causes=(
                    Cause(signal=row.metric, score=float(row.saturation_probability), z=0.0, onset=utc(when).isoformat(), is_root=True),
                ),
                evidence={
                    "source": "capacity",
                    "forecast_run": row.run_date,
                    "model": row.model,
                    "capacity_limit": row.capacity_limit,
                    "saturation_at": str(row.saturation_at),
                    "saturation_at_upper": str(row.saturation_at_upper),
                    "as_of": str(now),
                },
                remedy=bn.remedies[kind],
                severity="high",
            )
        )
    if forecasts is None or forecasts.empty:
        return out
    horizons = pred.get("horizons_s", {})
    z_interval = float(_normal_isf(config.forecasting.alpha / 2.0))
    own = forecasts[forecasts["service"] == service.name]
    for metric, series in own.groupby("metric"):
        if metric not in types or metric not in trusted_metrics:
            continue
        limit = config.tier(service.tier).latency_slo.threshold_ms if metric == "response_time" else capacity_limit(config, service, metric)
        horizon = pd.Timedelta(seconds=float(horizons.get(metric, horizons.get("bottleneck", 7200))))
        series = series.sort_values("ds")
        ds = pd.DatetimeIndex(series["ds"])
        seconds = (ds - now).total_seconds().to_numpy()
        grid = np.arange(0.0, horizon.total_seconds() + 1, 300.0)
        if len(seconds) == 0 or seconds.max() < 0 or seconds.min() > grid[-1]:
            continue
        yhat = np.interp(grid, seconds, series["yhat"].to_numpy(float))
        sigma = np.interp(grid, seconds, (series["yhat_upper"] - series["yhat_lower"]).to_numpy(float)) / (2.0 * z_interval)
        prob = _normal_sf((limit - yhat) / np.maximum(sigma, 1e-9 * max(abs(limit), 1.0)))
        best = int(np.argmax(prob))
        if prob[best] <= threshold:
            continue
        kind = types[metric]
        when = now + pd.Timedelta(seconds=float(grid[best]))
        out.append(
            Finding(
                service=service.name,
                tier=service.tier.value,
                type=kind,
                confidence=round(float(prob[best]), 2),
                start=when,
                end=now + horizon,
                kind=PREDICTED,
                root_causes=(Cause(signal=metric, score=round(float(prob[best]), 3), z=0.0, onset=when.isoformat(), is_root=True),),
                evidence={
                    "source": "forecast",
                    "model": str(series["model"].iloc[0]) if "model" in series else "",
                    "limit": limit,
                    "horizon_s": horizon.total_seconds(),
                    "yhat": round(float(yhat[best]), 4),
                    "sigma": round(float(sigma[best]), 4),
                    "probability": round(float(prob[best]), 4),
                    "as_of": str(now),
                },
                remedy=bn.remedies[kind],
                severity="high",
            )
        )
    return out


def _normal_isf(q: float) -> float:
    from scipy.special import ndtri

    return float(-ndtri(q))


def budget_levels(
    config: HeadroomConfig, service: Service, frame: pd.DataFrame, baseline: pd.DataFrame | None, at: pd.Timestamp
) -> dict[str, dict[str, Any]]:
    """Each metric with a performance budget, averaged over the 5 minutes before ``at``, and the budget level it reached."""
    import numpy as np
    import pandas as pd

    bn = config.bottlenecks
    now = at
    recent = frame[(frame.index >= now - pd.Timedelta(minutes=5)) & (frame.index < now)]
    relative_metrics = {r["utilization"] for r in bn.resources.values() if r.get("relative")}
    low_metrics = {r["utilization"] for r in bn.resources.values() if r.get("direction") == "low"}
    out = {}
    for metric, budget in bn.budgets.items():
        if metric not in recent or recent[metric].isna().all():
            continue
        value = float(recent[metric].mean())
        reference = 1.0
        if metric == "response_time":
            reference = config.tier(service.tier).latency_slo.threshold_ms
        elif metric in relative_metrics:
            ref = baseline[metric].reindex(recent.index).mean() if baseline is not None and metric in baseline else np.nan
            if not np.isfinite(ref) or ref <= 0:
                continue
            reference = float(ref)
        ratio = value / reference
        low = metric in low_metrics
        reached = "ok"
        for level in ("target", "warning", "critical"):
            if (ratio <= budget[level]) if low else (ratio >= budget[level]):
                reached = level
        out[metric] = {
            "value": round(value, 6),
            "reference": round(reference, 6),
            "level": reached,
            **{k: budget[k] for k in ("target", "warning", "critical")},
        }
    return out


def use_report(
    config: HeadroomConfig, service: Service, frame: pd.DataFrame, baseline: pd.DataFrame | None, at: pd.Timestamp
) -> list[dict[str, Any]]:
    """The USE method per resource with a metric: utilization, saturation and errors over the 5 minutes before ``at``.

    Saturation is what shows queueing: latency inflation over the seasonal baseline for every
    resource, the pool's checked-out share above its alarm level, a queue above its usual length.
    """
    import numpy as np

    bn = config.bottlenecks
    levels = budget_levels(config, service, frame, baseline, at)
    latency = levels.get("response_time")
    inflation = None
    now = at
    if baseline is not None and "response_time" in frame and "response_time" in baseline:
        recent = frame.index[(frame.index < now)][-1:] if len(frame) else []
        if len(recent):
            ref = float(baseline["response_time"].reindex(recent).mean())
            inflation = round(float(frame["response_time"].reindex(recent).mean()) / ref, 3) if np.isfinite(ref) and ref > 0 else None
    errors = levels.get("error_rate", {}).get("value")
    out = []
    for name, res in bn.resources.items():
        metric = res["utilization"]
        if metric not in levels:
            continue
        saturation: dict[str, Any] = {"latency_inflation": inflation}
        if name == "connection_pool":
            saturation["pool_over_alarm"] = levels[metric]["value"] > bn.alarms["connection_pool"]["threshold"]
        if res.get("relative"):
            saturation["vs_baseline"] = round(levels[metric]["value"] / levels[metric]["reference"], 3)
        full_scale = float(res.get("scale", 1.0)) if not res.get("relative") else levels[metric]["reference"]
        out.append(
            {
                "resource": name,
                "metric": metric,
                "utilization": round(levels[metric]["value"] / full_scale, 4),
                "level": levels[metric]["level"],
                "saturation": saturation,
                "errors": errors if res.get("errors") or name == "cpu" else None,
            }
        )
    if latency is not None:
        out.append(
            {
                "resource": "service",
                "metric": "response_time",
                "utilization": latency["value"],
                "level": latency["level"],
                "saturation": {"latency_inflation": inflation},
                "errors": errors,
                "alarms": {
                    name: _alarm(frame, now, metric, bn.alarms[name]) for name, metric in _ALARM_METRICS.items() if name in bn.alarms
                },
            }
        )
    return out


_ALARM_METRICS = {"error_rate": "error_rate", "mean_latency_ms": "response_time", "cache_hit_ratio": "cache_hit_ratio"}


def _alarm(frame: pd.DataFrame, at: pd.Timestamp, metric: str, alarm: Any) -> bool | None:
    """A SPEC alarm: the metric's mean over each of the last ``periods`` periods past its threshold (below it for hit ratio)."""
    import pandas as pd

    if metric not in frame:
        return None
    period = pd.Timedelta(seconds=float(alarm["period_s"]))
    means = [
        frame[metric][(frame.index >= at - (k + 1) * period) & (frame.index < at - k * period)].mean() for k in range(int(alarm["periods"]))
    ]
    if any(m != m for m in means):
        return None
    low = metric == "cache_hit_ratio"
    return all((m < alarm["threshold"]) if low else (m > alarm["threshold"]) for m in means)


def slo_status(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, window_start: pd.Timestamp, window_end: pd.Timestamp
) -> dict[str, Any]:
    """The tier's SLOs at ``window_end``: latency and availability over the window, the error budget over its rolling
    window (``slo.budget_window_days``, from the rows given), burn-rate alerts, projected exhaustion and the USE figures."""
    import numpy as np
    import pandas as pd

    from include.headroom.bottlenecks.slo import BurnAlert, budget_status, evaluate_burn_alerts

    bn = config.bottlenecks
    slo_cfg = bn.slo
    tier = config.tier(service.tier)
    start, end = window_start, window_end
    rows = metrics[(metrics["ts"] >= start) & (metrics["ts"] < end)]
    latency = rows.loc[rows["metric"] == "response_time", "value"].to_numpy(float)
    errors = rows.loc[rows["metric"] == "error_rate", "value"].to_numpy(float)
    compliance = float(np.mean(latency <= tier.latency_slo.threshold_ms)) if len(latency) else float("nan")
    error_mean = float(np.mean(errors)) if len(errors) else float("nan")
    availability = 1.0 - error_mean

    frame = wide(metrics[metrics["ts"] < end]) if len(metrics) else pd.DataFrame()
    err_series = frame["error_rate"].dropna() if "error_rate" in frame else pd.Series(dtype=float)
    thr_series = frame.get("throughput", None)
    window_days = float(slo_cfg.get("budget_window_days", 30))
    budget = budget_status(err_series, tier.error_budget, end, window_days, float(slo_cfg.get("exhaustion_burn_window_h", 6)), thr_series)
    alerts = evaluate_burn_alerts(
        err_series, tier.error_budget, end, [BurnAlert.from_mapping(a) for a in slo_cfg.get("burn_alerts", ())], thr_series
    )
    firing = [a for a in alerts if a.firing]
    alert = "page" if any(a.severity == "page" for a in firing) else "ticket" if firing else "none"
    objective = float(slo_cfg.get("latency_objective", 0.99))
    if not len(latency) or not len(errors):
        status = "no_data"
    elif availability < tier.uptime_slo or compliance < objective or budget.remaining <= 0 or alert == "page":
        status = "breach"
    elif budget.remaining < float(slo_cfg.get("at_risk_budget_remaining", 0.25)) or compliance < (1 + objective) / 2 or alert == "ticket":
        status = "at_risk"
    else:
        status = "ok"
    use = []
    if len(frame):
        base_start = end - pd.Timedelta(days=1)
        baseline, _ = seasonal_baseline(frame, base_start, int(bn.detection["baseline_days"]))
        use = use_report(config, service, frame, baseline, end)
    return {
        "window_end": end,
        "service": service.name,
        "tier": service.tier.value,
        "latency_percentile": tier.latency_slo.percentile,
        "latency_slo_ms": tier.latency_slo.threshold_ms,
        "latency_observed_ms": float(np.percentile(latency, tier.latency_slo.percentile)) if len(latency) else float("nan"),
        "latency_compliance": compliance,
        "uptime_slo": tier.uptime_slo,
        "availability": availability,
        "error_budget_remaining": budget.remaining,
        "budget_consumed": budget.consumed,
        "burn_rate": budget.burn_rate,
        "budget_exhausted_at": budget.exhausted_at,
        "alert": alert,
        "burn_alerts": json.dumps([a.to_dict() for a in alerts]),
        "use": json.dumps(use, default=str),
        "status": status,
    }
