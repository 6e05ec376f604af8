"""Analyse step: SLO status and bottleneck findings (observed and predicted) per service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.headroom.config import HeadroomConfig
from include.headroom.steps.common import select_services as _services
from include.headroom.store.queries import by_service, latest_capacity, rows_of
from include.headroom.validation.gates import Step, gate_services

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.store import Store


@dataclass(frozen=True)
class ServiceAnalysis:
    """One service's SLO status and findings over the window, or ``skipped`` with the gate's ``reason``.

    :param findings: per finding: ``type``, ``kind``, ``start`` (ISO), ``cause``, ``remedy``, ``root_cause_service``,
        ``remedy_owner``, ``confidence`` and a one-line ``summary``.
    """

    service: str
    status: str
    reason: str = ""
    alert: str | None = None
    budget_remaining: float | None = None
    findings: tuple[Mapping[str, Any], ...] = ()

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def to_xcom(self) -> dict[str, Any]:
        """The per-service dict the analysis task returns (a skipped service has no ``alert`` nor budget)."""
        if self.skipped:
            return {"service": self.service, "status": self.status, "reason": self.reason, "findings": []}
        return {
            "service": self.service,
            "status": self.status,
            "reason": self.reason,
            "alert": self.alert,
            "budget_remaining": self.budget_remaining,
            "findings": [dict(f) for f in self.findings],
        }


@dataclass(frozen=True)
class AnalysisResult:
    """The analysis of each service asked for, in catalog order of the names given."""

    services: tuple[ServiceAnalysis, ...]

    def to_xcom(self) -> list[dict[str, Any]]:
        return [s.to_xcom() for s in self.services]


def run_analysis(
    store: Store, config: HeadroomConfig, names: Sequence[str], window_start: pd.Timestamp, window_end: pd.Timestamp
) -> AnalysisResult:
    """SLO status and bottleneck findings (observed in the window, predicted from the latest forecast) for ``names``."""
    import pandas as pd

    from include.headroom.bottlenecks.analysis import analyze_service, predicted_findings, slo_status
    from include.headroom.bottlenecks.crossservice import explain_findings
    from include.headroom.forecasting.nearterm import with_nearterm

    def read_nodes(services: list[str], first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
        """Metrics of the services a finding's root cause may be in (across the call graph), for the cross-service ranking."""
        return store.read_metrics(services=services, start=first, end=last)

    start, end = window_start, window_end
    detection = config.bottlenecks.detection
    history = pd.Timedelta(days=float(detection["baseline_days"])) + pd.Timedelta(hours=float(detection.get("context_hours", 0)))
    budget_window = pd.Timedelta(days=float(config.bottlenecks.slo.get("budget_window_days", 30)))
    metrics = store.read_metrics(services=list(names), start=min(start - history, end - budget_window), end=end)
    capacity, forecasts = latest_capacity(store, end, list(names))
    gate = gate_services(store, config, end, Step.ANALYSIS, names)
    # Response time forecast one hour ahead from the newest points, in place of the daily run's (forecasting/nearterm.py).
    capacity, forecasts = with_nearterm(config, metrics, [n for n in names if not gate.get(n)], end, capacity, forecasts)
    findings, slos, out = [], [], []
    metrics_of, capacity_of, forecasts_of = by_service(metrics), by_service(capacity), by_service(forecasts)
    for svc in _services(config, names):
        rows = rows_of(metrics_of, svc.name, metrics)
        slos.append(slo_status(config, svc, rows, start, end))
        if gate[svc.name]:
            out.append(ServiceAnalysis(service=svc.name, status="skipped", reason=gate[svc.name]))
            continue
        found = explain_findings(config, analyze_service(config, svc, rows, start, end), read_nodes) + predicted_findings(
            config, svc, rows_of(capacity_of, svc.name, capacity), end, rows_of(forecasts_of, svc.name, forecasts)
        )
        findings += [f.to_row(end, start) for f in found]
        out.append(
            ServiceAnalysis(
                service=svc.name,
                status=slos[-1]["status"],
                alert=slos[-1]["alert"],
                budget_remaining=slos[-1]["error_budget_remaining"],
                findings=tuple(
                    {
                        "type": f.type,
                        "kind": f.kind,
                        "start": f.start.isoformat(),
                        "cause": f.top_cause,
                        "remedy": f.remedy,
                        "root_cause_service": f.evidence.get("root_cause", {}).get("service"),
                        "remedy_owner": f.evidence.get("root_cause", {}).get("owner"),
                        "confidence": f.confidence,
                        "summary": f.describe(),
                    }
                    for f in found
                ),
            )
        )
    store.upsert("slo_status", pd.DataFrame(slos))
    if findings:
        store.upsert("findings", pd.DataFrame(findings))
    return AnalysisResult(tuple(out))
