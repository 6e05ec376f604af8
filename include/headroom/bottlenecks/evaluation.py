"""Scoring bottleneck findings against the sample fleet's ground truth: recall, precision, false findings per healthy day.

The analysis runs the way the DAG runs it: window after window (``window_hours``
each) over ``days`` up to the fleet's anchor, each with only the data before the
window's end. Findings of one (service, type) that overlap or touch across
windows are one episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from include.headroom.config import HeadroomConfig

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.bottlenecks.analysis import Finding
    from include.headroom.metrics.sample_fleet import GroundTruth, SampleFleet

MATCH_GRACE_H = 2.0  # an episode that starts this soon after an incident ends still belongs to it


@dataclass(frozen=True)
class Episode:
    """Findings of one (service, type) merged across windows."""

    service: str
    type: str
    start: pd.Timestamp
    end: pd.Timestamp
    top_cause: str | None
    remedy: str


@dataclass(frozen=True)
class Evaluation:
    """Figures of one evaluation run and the episodes behind them."""

    incidents: int
    found: int
    episodes: int
    true_episodes: int
    false_episodes: int
    healthy_service_days: float
    missed: tuple[str, ...] = ()
    false: tuple[Episode, ...] = field(default_factory=tuple)
    all_episodes: tuple[Episode, ...] = field(default_factory=tuple)

    @property
    def recall(self) -> float:
        return self.found / self.incidents if self.incidents else float("nan")

    @property
    def precision(self) -> float:
        return self.true_episodes / self.episodes if self.episodes else float("nan")

    @property
    def false_per_10_healthy_days(self) -> float:
        return 10.0 * self.false_episodes / self.healthy_service_days if self.healthy_service_days else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "found_right_type_and_cause": self.found,
            "recall": round(self.recall, 4),
            "episodes": self.episodes,
            "true_episodes": self.true_episodes,
            "precision": round(self.precision, 4),
            "false_episodes": self.false_episodes,
            "healthy_service_days": round(self.healthy_service_days, 2),
            "false_per_10_healthy_service_days": round(self.false_per_10_healthy_days, 4),
            "missed": list(self.missed),
            "false": [f"{e.service} {e.type} {e.start:%Y-%m-%d %H:%M}..{e.end:%H:%M} cause {e.top_cause}" for e in self.false],
        }


def merge_episodes(findings: Sequence[Finding], gap_minutes: float = 60.0) -> list[Episode]:
    """One episode per run of overlapping findings of the same (service, type); the first finding's cause and remedy."""
    import pandas as pd

    out: list[Episode] = []
    gap = pd.Timedelta(minutes=gap_minutes)
    for f in sorted(findings, key=lambda f: (f.service, f.type, f.start)):
        last = out[-1] if out else None
        if last and last.service == f.service and last.type == f.type and f.start <= last.end + gap:
            out[-1] = Episode(last.service, last.type, last.start, max(last.end, f.end), last.top_cause, last.remedy)
        else:
            out.append(Episode(f.service, f.type, f.start, f.end, f.top_cause, f.remedy))
    return out


def _overlaps(e: Episode, truth: GroundTruth) -> bool:
    import pandas as pd

    start, end = pd.Timestamp(truth.start), pd.Timestamp(truth.end) + pd.Timedelta(hours=MATCH_GRACE_H)
    return e.service == truth.service and e.start <= end and e.end >= start


def score_episodes(
    episodes: Sequence[Episode], truths: Sequence[GroundTruth], services: int, start: pd.Timestamp, end: pd.Timestamp
) -> Evaluation:
    """Compare ``episodes`` with ``truths`` (observed incidents only) over ``[start, end)`` of ``services`` services."""
    import pandas as pd

    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    truths = [t for t in truths if t.kind != "saturation" and pd.Timestamp(t.end) > lo and pd.Timestamp(t.start) < hi]
    found, missed = 0, []
    for t in truths:
        right = [
            e
            for e in episodes
            if _overlaps(e, t) and e.type == t.expected_type and e.top_cause == t.expected_cause and e.remedy == t.remedy
        ]
        if right:
            found += 1
        else:
            missed.append(f"{t.kind} on {t.service}")
    true_eps = [e for e in episodes if any(_overlaps(e, t) and e.type == t.expected_type for t in truths)]
    false_eps = [e for e in episodes if not any(_overlaps(e, t) for t in truths)]
    affected_days = 0.0
    for t in truths:
        t_start, t_end = max(pd.Timestamp(t.start), lo), min(pd.Timestamp(t.end) + pd.Timedelta(hours=MATCH_GRACE_H), hi)
        affected_days += max(0.0, (t_end.ceil("D") - t_start.floor("D")).total_seconds() / 86400.0)
    healthy = services * (hi - lo).total_seconds() / 86400.0 - affected_days
    return Evaluation(
        incidents=len(truths),
        found=found,
        episodes=len(episodes),
        true_episodes=len(true_eps),
        false_episodes=len(false_eps),
        healthy_service_days=healthy,
        missed=tuple(missed),
        false=tuple(false_eps),
        all_episodes=tuple(episodes),
    )


def evaluate_fleet(
    config: HeadroomConfig, fleet: SampleFleet, days: int = 30, window_hours: float = 24.0, history: pd.DataFrame | None = None
) -> Evaluation:
    """Run the analysis window by window over the ``days`` before the fleet's anchor and score it against the ground truth."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service

    det = config.bottlenecks.detection
    end = fleet.anchor
    start = end - pd.Timedelta(days=days)
    lead = pd.Timedelta(days=float(det["baseline_days"]) + 1) + pd.Timedelta(hours=float(det.get("context_hours", 0)))
    if history is None:
        history = fleet.generate(start - lead, end)
    step = pd.Timedelta(hours=window_hours)
    findings = []
    for svc in config.services:
        rows = history[history["service"] == svc.name]
        at = start
        while at < end:
            upto = min(at + step, end)
            window_rows = rows[(rows["ts"] >= at - lead) & (rows["ts"] < upto)]
            findings += analyze_service(config, svc, window_rows, at, upto)
            at = upto
    return score_episodes(merge_episodes(findings), fleet.ground_truth(), len(config.services), start, end)


@dataclass(frozen=True)
class PredictionEvaluation:
    """Predicted bottlenecks at the anchor against the saturation incidents of the ground truth."""

    saturations: int
    found: int
    false: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"saturation_incidents": self.saturations, "found_right_type_and_cause": self.found, "false_predictions": list(self.false)}


def evaluate_predictions(config: HeadroomConfig, fleet: SampleFleet, history: pd.DataFrame | None = None) -> PredictionEvaluation:
    """Forecast every service from its history before the anchor (as the daily DAG does) and score the predicted findings."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import predicted_findings
    from include.headroom.forecasting.capacity import forecast_frame, forecast_service

    as_of = fleet.anchor
    if history is None:
        history = fleet.generate(as_of - pd.Timedelta(days=config.forecasting.history_days), as_of)
    run_date = f"{as_of:%Y-%m-%d}"
    truths = [t for t in fleet.ground_truth() if t.kind == "saturation"]
    found, false = 0, []
    for svc in config.services:
        results = forecast_service(config, svc, history[history["service"] == svc.name], run_date)
        capacity = pd.DataFrame([r.capacity for r in results])
        forecasts = forecast_frame(results)
        predicted = predicted_findings(config, svc, capacity, as_of, forecasts if len(forecasts) else None)
        mine = [t for t in truths if t.service == svc.name]
        right = [
            f for f in predicted for t in mine if f.type == t.expected_type and f.top_cause == t.expected_cause and f.remedy == t.remedy
        ]
        found += min(len(mine), 1 if right else 0)
        if not mine:
            false += [f"{svc.name} {f.type} at {f.start:%Y-%m-%d %H:%M} (p={f.confidence})" for f in predicted]
    return PredictionEvaluation(saturations=len(truths), found=found, false=tuple(false))


@dataclass(frozen=True)
class RootCauseEvaluation:
    """Root-cause service of the findings on the sample fleet's incidents against the ground truth's ``root_cause``."""

    cases: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        ranks = [c["rank"] for c in self.cases]
        n = len(ranks) or 1
        cross = [c for c in self.cases if c["root_cause"] != c["service"]]
        return {
            "incidents": len(ranks),
            "root_cause_accuracy": round(sum(r == 1 for r in ranks) / n, 3),
            "top3": round(sum(r is not None and r <= 3 for r in ranks) / n, 3),
            "mrr": round(sum(1.0 / r for r in ranks if r) / n, 3),
            "cross_service": len(cross),
            "cross_service_accuracy": round(sum(c["rank"] == 1 for c in cross) / (len(cross) or 1), 3),
            "cases": list(self.cases),
        }


def evaluate_root_causes(config: HeadroomConfig, fleet: SampleFleet, history: pd.DataFrame | None = None) -> RootCauseEvaluation:
    """For each observed incident: the analysis on a window around it, the matching finding explained across services,
    and where the ground truth's root cause lands in the ranking (``rank`` None: not ranked, or no matching finding)."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service
    from include.headroom.bottlenecks.crossservice import explain_findings

    det = config.bottlenecks.detection
    lead = pd.Timedelta(days=float(det["baseline_days"]) + 1) + pd.Timedelta(hours=float(det.get("context_hours", 0)))
    truths = [t for t in fleet.ground_truth() if t.kind != "saturation" and t.root_cause]
    if history is None:
        first = min(pd.Timestamp(t.start) for t in truths) - lead
        history = fleet.generate(first, fleet.anchor)

    def read(services: list[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return history[history["service"].isin(services) & (history["ts"] >= start) & (history["ts"] < end)]

    cases = []
    for t in truths:
        start, end = pd.Timestamp(t.start), pd.Timestamp(t.end)
        svc = config.service(t.service)
        rows = history[(history["service"] == t.service) & (history["ts"] >= start - lead) & (history["ts"] < end + pd.Timedelta(hours=1))]
        found = [
            f
            for f in analyze_service(config, svc, rows, start - pd.Timedelta(hours=1), end + pd.Timedelta(hours=1))
            if f.type == t.expected_type
        ]
        rank, named = None, None
        if found:
            explained = explain_findings(config, found[:1], read)[0]
            ranking = [r["service"] for r in explained.evidence.get("root_cause", {}).get("ranking", [])]
            named = ranking[0] if ranking else None
            rank = ranking.index(t.root_cause) + 1 if t.root_cause in ranking else None
        cases.append(
            {
                "incident": f"{t.kind} on {t.service}",
                "service": t.service,
                "root_cause": t.root_cause,
                "found_as": t.expected_type if found else None,
                "named": named,
                "rank": rank,
            }
        )
    return RootCauseEvaluation(tuple(cases))
