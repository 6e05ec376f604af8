"""Bottleneck analysis: tier SLO checks, rule-based classification of episodes, and a causal root-cause ranking.

Each signal is compared with its own seasonal baseline (the median of the same
5-minute slot over the previous days, computed from data before the window
only). Rules over those deviations mark points; runs of marked points become
episodes; each episode gets a type, a confidence, a ranked list of causes with
evidence and the remedy the action DAGs understand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig, Service
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SYMPTOMS = ("response_time",)
OBSERVED, PREDICTED = "observed", "predicted"


@dataclass(frozen=True)
class Cause:
    """One candidate cause with the evidence a human can check."""

    signal: str
    score: float
    z: float
    onset: str | None
    is_root: bool


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

    def to_row(self, window_end: pd.Timestamp) -> dict[str, Any]:
        return {
            "window_end": window_end, "service": self.service, "tier": self.tier, "type": self.type,
            "confidence": self.confidence, "start": self.start, "end": self.end, "kind": self.kind,
            "root_causes": json.dumps([asdict(c) for c in self.root_causes]),
            "evidence": json.dumps(self.evidence, default=str), "remedy": self.remedy, "severity": self.severity,
        }

    @property
    def top_cause(self) -> str | None:
        return self.root_causes[0].signal if self.root_causes else None


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


def _rank_causes(config: HeadroomConfig, z: pd.DataFrame, start: int, end: int, frame: pd.DataFrame) -> tuple[Cause, ...]:
    """Rank deviating signals: roots (no deviating upstream signal in the prior) first, then by strength."""
    import numpy as np

    bn = config.bottlenecks
    node_of = dict(bn.signals)
    signal_of = {v: k for k, v in node_of.items()}
    parents: dict[str, list[str]] = {}
    for src, dst, _ in bn.dependency_prior:
        parents.setdefault(dst, []).append(src)
    episode = z.iloc[start : end + 1]
    strength = episode.abs().median()
    deviating = {m for m in strength.index if m in node_of and m not in SYMPTOMS and strength[m] > 3.0}

    def upstream_deviating(metric: str) -> bool:
        seen, todo = set(), list(parents.get(node_of[metric], []))
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if signal_of.get(node) in deviating:
                return True
            todo.extend(parents.get(node, []))
        return False

    causes = []
    lead = z.iloc[max(0, start - 12) : end + 1]
    for metric in deviating:
        over = np.flatnonzero(lead[metric].abs().to_numpy() > 3.0)
        onset = lead.index[over[0]].isoformat() if len(over) else None
        causes.append(Cause(signal=metric, score=round(float(strength[metric]), 2), z=round(float(episode[metric].median()), 2),
                            onset=onset, is_root=not upstream_deviating(metric)))
    causes.sort(key=lambda c: (not c.is_root, -(c.score)))
    return tuple(causes)


def _classify(config: HeadroomConfig, row_z: pd.DataFrame, frame: pd.DataFrame, baseline: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per type, the points where its rule holds."""
    import numpy as np

    det, alarms = config.bottlenecks.detection, config.bottlenecks.alarms
    col = lambda m: frame[m].to_numpy(float) if m in frame else np.full(len(frame), np.nan)  # noqa: E731
    base = lambda m: baseline[m].to_numpy(float) if m in baseline else np.full(len(frame), np.nan)  # noqa: E731
    latency_up = col("response_time") > det["latency_inflation"] * base("response_time")
    errors_high = col("error_rate") > alarms["error_rate"]["threshold"]
    cpu_high = col("cpu_utilization") > det["cpu_high_pct"]
    hit_low = (col("cache_hit_ratio") < alarms["cache_hit_ratio"]["threshold"]) | (col("cache_hit_ratio") < base("cache_hit_ratio") - det["cache_drop"])
    hit_ok = col("cache_hit_ratio") >= base("cache_hit_ratio") - det["cache_ok_margin"]
    db_slow = col("database_performance") > det["db_slowdown_factor"] * base("database_performance")
    with np.errstate(invalid="ignore"):
        memory = frame["memory_utilization"] if "memory_utilization" in frame else None
        if memory is not None:
            daily_mean = memory.rolling("24h", min_periods=12).mean()
            slope = daily_mean.diff(12).to_numpy() / 1.0  # percent per hour (12 points of 5 minutes)
            leak = np.nan_to_num(slope) > det["memory_leak_slope_pct_per_h"]
        else:
            leak = np.zeros(len(frame), bool)
    return {
        "dependency_failure": errors_high & ~cpu_high,
        "cache_bound": hit_low & (db_slow | latency_up),
        "database_bound": db_slow & hit_ok,
        "cpu_bound": cpu_high & latency_up,
        "memory_leak": leak,
    }


def analyze_service(
    config: HeadroomConfig, service: Service, metrics: pd.DataFrame, window_start: Any, window_end: Any
) -> list[Finding]:
    """Observed bottleneck episodes of one service inside ``[window_start, window_end)``.

    :param metrics: canonical rows of the service covering the window and the baseline days before it.
    """
    import numpy as np

    start, end = utc(window_start), utc(window_end)
    det = config.bottlenecks.detection
    frame = wide(metrics)
    if frame.empty:
        return []
    baseline, scale = seasonal_baseline(frame, start, int(det["baseline_days"]))
    inside = (frame.index >= start) & (frame.index < end)
    frame, baseline = frame[inside], baseline[inside]
    if frame.empty or baseline.isna().all().all():
        return []
    z = (frame - baseline) / scale
    rules = _classify(config, z, frame, baseline)
    min_points = int(det["min_episode_points"])
    min_leak_points = int(det["memory_leak_min_hours"] * 12)
    findings = []
    for kind, mask in rules.items():
        for a, b in _runs(mask, min_leak_points if kind == "memory_leak" else min_points):
            held = float(np.mean(mask[a : b + 1]))
            confidence = round(min(1.0, 0.5 + 0.5 * held * min(1.0, (b - a + 1) / 12)), 2)
            causes = _rank_causes(config, z, a, b, frame)
            if kind == "memory_leak":
                causes = tuple(sorted(causes, key=lambda c: c.signal != "memory_utilization"))
            peak = {m: round(float(frame[m].iloc[a : b + 1].max()), 6) for m in frame.columns}
            findings.append(Finding(
                service=service.name, tier=service.tier.value, type=kind, confidence=confidence,
                start=frame.index[a], end=frame.index[b], kind=OBSERVED, root_causes=causes,
                evidence={"points": int(b - a + 1), "peak": peak,
                          "baseline": {m: round(float(baseline[m].iloc[a]), 6) for m in baseline.columns if np.isfinite(baseline[m].iloc[a])}},
                remedy=config.bottlenecks.remedies[kind],
                severity="critical" if kind == "dependency_failure" or service.tier.value == "critical" else "high",
            ))
    # Scaling does not fix a failing dependency: an episode inside a dependency failure is reported once, as that.
    failures = [f for f in findings if f.type == "dependency_failure"]
    findings = [f for f in findings if f.type == "dependency_failure" or not any(d.start <= f.start <= d.end for d in failures)]
    return sorted(findings, key=lambda f: (f.start, f.type))


def predicted_findings(config: HeadroomConfig, service: Service, capacity: pd.DataFrame, as_of: Any) -> list[Finding]:
    """Bottlenecks predicted from the latest capacity forecast: saturation within the horizon with probability above the threshold."""
    import pandas as pd

    threshold = 0.7
    out = []
    rows = capacity[(capacity["service"] == service.name) & (capacity["status"] == "ok")]
    for row in rows.itertuples():
        when = row.saturation_at if pd.notna(row.saturation_at) else row.saturation_at_upper
        if pd.isna(when) or row.saturation_probability <= threshold:
            continue
        kind = "cpu_bound" if row.metric == "throughput" else "memory_bound"
        out.append(Finding(
            service=service.name, tier=service.tier.value, type=kind, confidence=round(float(row.saturation_probability), 2),
            start=utc(when), end=utc(when), kind=PREDICTED,
            root_causes=(Cause(signal=row.metric, score=float(row.saturation_probability), z=0.0, onset=utc(when).isoformat(), is_root=True),),
            evidence={"forecast_run": row.run_date, "model": row.model, "capacity_limit": row.capacity_limit,
                      "saturation_at": str(row.saturation_at), "saturation_at_upper": str(row.saturation_at_upper), "as_of": str(utc(as_of))},
            remedy=config.bottlenecks.remedies[kind], severity="high",
        ))
    return out


def slo_status(config: HeadroomConfig, service: Service, metrics: pd.DataFrame, window_start: Any, window_end: Any) -> dict[str, Any]:
    """The tier's SLOs checked over the window: latency percentile, availability and error budget left."""
    import numpy as np

    tier = config.tier(service.tier)
    start, end = utc(window_start), utc(window_end)
    rows = metrics[(metrics["ts"] >= start) & (metrics["ts"] < end)]
    latency = rows.loc[rows["metric"] == "response_time", "value"].to_numpy(float)
    errors = rows.loc[rows["metric"] == "error_rate", "value"].to_numpy(float)
    compliance = float(np.mean(latency <= tier.latency_slo.threshold_ms)) if len(latency) else float("nan")
    error_mean = float(np.mean(errors)) if len(errors) else float("nan")
    availability = 1.0 - error_mean
    budget_left = 1.0 - error_mean / tier.error_budget if len(errors) else float("nan")
    if not len(latency) or not len(errors):
        status = "no_data"
    elif availability < tier.uptime_slo or compliance < 0.99:
        status = "breach"
    elif budget_left < 0.25 or compliance < 0.995:
        status = "at_risk"
    else:
        status = "ok"
    return {
        "window_end": end, "service": service.name, "tier": service.tier.value,
        "latency_percentile": tier.latency_slo.percentile, "latency_slo_ms": tier.latency_slo.threshold_ms,
        "latency_observed_ms": float(np.percentile(latency, 95)) if len(latency) else float("nan"),
        "latency_compliance": compliance, "uptime_slo": tier.uptime_slo, "availability": availability,
        "error_budget_remaining": budget_left, "status": status,
    }
